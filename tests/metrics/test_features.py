"""Feature extractors: Inception weights are never downloaded; errors say how to get them."""

import pytest
import torch
from safetensors.torch import save_file

from genzoo.core.errors import CheckpointError, GenzooError
from genzoo.metrics.features import FeatureExtractor, InceptionFeatures, PixelFeatures, extract


def test_inception_without_weights_explains_how_to_get_them(monkeypatch, tmp_path):
    monkeypatch.delenv("GENZOO_INCEPTION_WEIGHTS", raising=False)
    with pytest.raises(GenzooError, match="GENZOO_INCEPTION_WEIGHTS") as e:
        InceptionFeatures()
    assert "never downloads" in str(e.value) and "https://" in str(e.value)
    monkeypatch.setenv("GENZOO_INCEPTION_WEIGHTS", str(tmp_path / "missing.safetensors"))
    with pytest.raises(GenzooError, match=r"missing\.safetensors"):
        InceptionFeatures()


def test_inception_refuses_pickled_weights(tmp_path):
    path = tmp_path / "weights-inception.pth"
    torch.save({"w": torch.zeros(1)}, path)
    with pytest.raises(CheckpointError, match="pickle"):
        InceptionFeatures(path)


def test_inception_needs_torch_fidelity_for_the_network(tmp_path):
    from torchmetrics.utilities.imports import _TORCH_FIDELITY_AVAILABLE

    if _TORCH_FIDELITY_AVAILABLE:
        pytest.skip("torch-fidelity is installed")
    path = tmp_path / "inception.safetensors"
    save_file({"w": torch.zeros(1)}, str(path))
    with pytest.raises(GenzooError, match="pip install torch-fidelity"):
        InceptionFeatures(path)


def test_pixel_features_flatten_in_batches():
    x = torch.randn(23, 3, 4, 4)
    ext = PixelFeatures()
    assert isinstance(ext, FeatureExtractor)
    assert torch.equal(extract(ext.features, x, batch_size=5), x.reshape(23, 48))
