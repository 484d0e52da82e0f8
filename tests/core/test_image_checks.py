"""Images handed to a model through the Python API are checked against the data's shape in one
place (``GenerativeModel.__init_subclass__``): 3 x 3, RGB, flat or unbatched images given to an
8 x 8 grey model were a shape error from whichever layer met them first (``mat1 and mat2 shapes
cannot be multiplied``, ``Squeeze needs an even height``, ``permute(sparse_coo)``), and NaN
pixels an ``IndexError`` deep in PixelCNN."""

from __future__ import annotations

import pytest
import torch

from genzoo.core.errors import ConfigError
from genzoo.core.protocol import Embeds, ExactLikelihood, GenerativeModel, LatentSpace
from genzoo.data import dataset_info
from genzoo.models import MODELS
from genzoo.models.autoencoders.vae import VAE, VAEConfig
from genzoo.models.autoregressive.pixelcnn import PixelCNN, PixelCNNConfig
from genzoo.models.flows.realnvp import RealNVP, RealNVPConfig

INFO = dataset_info("digits")
BAD = {
    "(2, 1, 3, 3)": torch.zeros(2, 1, 3, 3),
    "(2, 3, 8, 8)": torch.zeros(2, 3, 8, 8),
    "(1, 8, 8)": torch.zeros(1, 8, 8),
    "(2, 64)": torch.zeros(2, 64),
    "list": [[0.0]],
}


def _models() -> list[GenerativeModel]:
    torch.manual_seed(0)
    return [
        RealNVP(RealNVPConfig(), INFO),
        VAE(VAEConfig(), INFO),
        PixelCNN(PixelCNNConfig(), INFO),
    ]


def test_wrong_images_are_one_sentence_naming_their_shape_at_every_entry() -> None:
    for m in _models():
        calls = {
            "loss": lambda x, m=m: m.loss({"x": x}),
            "eval_metrics": lambda x, m=m: m.eval_metrics({"x": x}),
        }
        if isinstance(m, ExactLikelihood):
            calls["log_prob"] = m.log_prob
        if isinstance(m, LatentSpace):
            calls["encode_latent"] = m.encode_latent
        for entry, call in calls.items():
            for got, x in BAD.items():
                with pytest.raises(ConfigError) as err:
                    call(x)
                msg = str(err.value)
                assert "takes images (B, 1, 8, 8) of 'digits'" in msg, (entry, msg)
                assert msg.endswith(f"has shape {got}."), (entry, msg)
        nan = torch.full((2, 1, 8, 8), float("nan"))
        for entry in ("log_prob", "encode_latent"):
            if entry in calls:
                with pytest.raises(ConfigError, match="holds NaN or infinite values"):
                    calls[entry](nan)


def test_the_check_changes_nothing_for_images_of_the_right_shape() -> None:
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    for m in _models():
        m.eval()
        for entry in ("log_prob", "encode_latent"):
            method = getattr(type(m), entry, None)
            if method is None:
                continue
            checked, plain = getattr(m, entry)(x), method.__wrapped__(m, x)
            if isinstance(checked, torch.Tensor):
                torch.testing.assert_close(checked, plain, rtol=0, atol=0)
        torch.manual_seed(1)
        a = m.eval_metrics({"x": x})
        torch.manual_seed(1)
        b = type(m).eval_metrics.__wrapped__(m, {"x": x})
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


def test_every_model_checks_the_images_of_its_own_entry_points() -> None:
    for name in MODELS.names():
        cls = MODELS.get(name)
        for entry in ("loss", "eval_metrics", "log_prob", "encode_latent", "embed"):
            own = cls.__dict__.get(entry)
            if own is not None and (entry != "embed" or issubclass(cls, Embeds)):
                assert getattr(own, "checks_images", False), (name, entry)


def test_a_representation_model_checks_the_images_it_embeds() -> None:
    from genzoo.models.ssl.simclr import SimCLR, SimCLRConfig

    m = SimCLR(SimCLRConfig(), INFO)
    with pytest.raises(ConfigError, match=r"takes images \(B, 1, 8, 8\).*shape \(2, 3, 8, 8\)"):
        m.embed(torch.zeros(2, 3, 8, 8))
    with pytest.raises(ConfigError, match="NaN"):
        m.embed(torch.full((2, 1, 8, 8), float("nan")))
    x = torch.rand(3, 1, 8, 8) * 2 - 1
    torch.testing.assert_close(m.embed(x), type(m).embed.__wrapped__(m, x), rtol=0, atol=0)
