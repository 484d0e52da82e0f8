"""Nested backbone configs: old flat keys (config.yaml files and ``key=value`` overrides) land in
their backbone and build the network the old code built, with the same state-dict keys."""

import dataclasses
import json

import pytest
import torch
import yaml

from genzoo.core.config import parse_overrides
from genzoo.core.errors import ConfigError
from genzoo.core.io import load_tensors
from genzoo.data import load_dataset
from genzoo.data.base import DataInfo
from genzoo.models.diffusion import DDPMConfig, EDMConfig, FlowMatchingConfig
from genzoo.models.diffusion.backbones import FLAT_KEYS, MLPBackbone, UNetBackbone
from genzoo.models.diffusion.base import DiffusionModel
from genzoo.models.diffusion.ddpm import DDPM
from genzoo.models.diffusion.edm import EDM
from genzoo.models.diffusion.flow_matching import FlowMatching
from genzoo.models.diffusion.t2i import T2IDiffusionConfig
from genzoo.nn.dit import DiT
from genzoo.nn.unet import NoiseMLP, UNet

OLD = "tests/fixtures/old_runs"
OLD_FLAT = {  # the flat keys every diffusion config.yaml of the old code held
    "channels", "channel_mult", "num_res_blocks", "attn_resolutions", "dropout", "adaptive_norm",
    "hidden", "patch", "width", "depth", "heads",
}  # fmt: skip


def _old(key: str) -> tuple[dict, DataInfo]:
    with open(f"{OLD}/{key}/config.yaml") as f:
        doc = yaml.safe_load(f)
    return doc["model_config"], DataInfo.from_dict(doc["data_info"])


def test_every_old_flat_key_has_a_backbone():
    assert set(FLAT_KEYS) == OLD_FLAT
    assert OLD_FLAT <= set(DDPMConfig.field_names())  # so `key=value` is routed to the model


@pytest.mark.parametrize(
    "key,cls", [("ddpm-unet", DDPM), ("edm-dit", EDM), ("fm-mlp", FlowMatching)]
)
def test_old_config_yaml_builds_the_old_network_with_its_checkpoint_keys(key, cls):
    """The flat dict of a run saved by the old code loads into the nested config, keeps every
    value, and the model's state-dict keys and shapes are those of the old checkpoint."""
    flat, info = _old(key)
    cfg = cls.config_class.from_dict(flat)
    nested = cfg.to_dict()
    for k in OLD_FLAT:
        v = nested[FLAT_KEYS[k]][k]
        assert v == flat[k], (k, v, flat[k])
    assert cls.config_class.from_dict(nested) == cfg  # the nested form round-trips
    model = cls(cfg, info)
    saved = load_tensors(f"{OLD}/{key}/checkpoints/step_000000002/model.safetensors")
    own = model.state_dict()
    assert sorted(own) == sorted(saved)
    assert all(own[k].shape == saved[k].shape for k in saved)
    model.load_state_dict(saved, strict=True)


def test_flat_overrides_build_the_same_network_as_the_old_constructor_call():
    """``channels=8 channel_mult=[1,2,2] ...`` from the command line gives the U-Net the old code
    built from the same flat fields (same parameters at the same seed); points get the MLP."""
    info = load_dataset("digits").info
    items = ["channels=8", "channel_mult=[1,2]", "num_res_blocks=2", "attn_resolutions=[4]"]
    cfg = EDMConfig.from_dict({**parse_overrides(items), "class_conditional": True})
    assert cfg.unet == UNetBackbone(channels=8, num_res_blocks=2, attn_resolutions=(4,))
    torch.manual_seed(0)
    net = EDM(cfg, info).net
    torch.manual_seed(0)
    ref = UNet(1, 8, channels=8, channel_mult=(1, 2), num_res_blocks=2, attn_resolutions=(4,),
               dropout=0.0, n_classes=10, adaptive_norm=False)  # fmt: skip
    assert type(net) is UNet
    for (ka, a), (kb, b) in zip(net.state_dict().items(), ref.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(a, b), ka
    pts = FlowMatching(FlowMatchingConfig.from_dict({"hidden": [16, 16]}), _old("fm-mlp")[1])
    assert isinstance(pts.net, NoiseMLP) and pts.config.mlp == MLPBackbone(hidden=(16, 16))
    dit = EDM(EDMConfig.from_dict({"arch": "dit", "width": 16, "depth": 1, "heads": 2}), info)
    assert isinstance(dit.net, DiT) and len(dit.net.blocks) == 1


def test_nested_and_flat_keys_combine_and_subclass_defaults_stay():
    """A flat key wins over the nested one; a partial backbone keeps the model's own defaults
    (t2i's attention at 8x8); ``replace`` takes flat keys too."""
    cfg = DDPMConfig.from_dict({"unet": {"channels": 16, "dropout": 0.1}, "channels": 8})
    assert (cfg.unet.channels, cfg.unet.dropout) == (8, 0.1)
    assert cfg.replace(channels=4).unet.channels == 4
    t2i = T2IDiffusionConfig.from_dict({"channels": 8})
    assert t2i.unet.attn_resolutions == (8,) and t2i.unet.channels == 8
    assert T2IDiffusionConfig.from_dict({"unet": {"num_res_blocks": 2}}).unet.attn_resolutions == (
        8,
    )


@pytest.mark.parametrize(
    "over,match",
    [
        ({"channels": 0}, r"channels = 0 must be >= 1"),
        ({"dropout": 1.0}, r"dropout = 1.0 must be a finite number in \[0, 1\)"),
        ({"hidden": [8, 0]}, r"Each entry of hidden"),
        ({"width": 10, "heads": 4}, r"width = 10 must be divisible by heads = 4"),
        ({"label_dropout": -0.1}, r"label_dropout"),
        ({"sample_steps": -1}, r"sample_steps = -1 must be >= 0"),
        ({"unet": {"chanels": 8}}, r"Unknown config key .*chanels.*for UNetBackbone.*'channels'"),
        ({"timesteps": 1}, r"timesteps = 1 must be >= 2"),
    ],
)
def test_ranges_are_checked_once_with_one_sentence(over, match):
    with pytest.raises(ConfigError, match=match):
        DDPMConfig.from_dict(over)


def test_backbones_are_frozen_configs_with_their_own_fields():
    for cls in (UNetBackbone, MLPBackbone):
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen
    assert issubclass(DDPM, DiffusionModel)


@pytest.mark.parametrize(
    "key,cls", [("ddpm-unet", DDPM), ("edm-dit", EDM), ("fm-mlp", FlowMatching)]
)
def test_runs_saved_by_the_old_code_sample_identically_through_the_template(key, cls):
    """Built from the old flat config and EMA weights (no runs layer needed), the template draws
    bit for bit the samples the old code drew (seed 3, the fixtures' options)."""
    flat, info = _old(key)
    model = cls(cls.config_class.from_dict(flat), info)
    ema = load_tensors(f"{OLD}/{key}/checkpoints/step_000000002/ema.safetensors")
    model.load_state_dict(ema, strict=True)
    with open(f"{OLD}/sample_options.json") as f:
        options = json.load(f)[key]
    x = model.eval().sample(6, generator=torch.Generator().manual_seed(3), **options)
    want = load_tensors(f"{OLD}/expected_samples.safetensors")[key]
    assert torch.equal(x, want)
