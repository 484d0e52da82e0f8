"""LoRA (arXiv:2106.09685): identities, parameter count, and parity with PEFT's LoRA layer."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from genzoo.nn.lora import LoRALinear, apply_lora, merge_lora, unmerge_lora


def _layer(d_in: int = 12, d_out: int = 20, rank: int = 4, alpha: float = 8.0) -> LoRALinear:
    torch.manual_seed(0)
    return LoRALinear(nn.Linear(d_in, d_out), rank, alpha)


def test_b_zero_is_the_base_layer() -> None:
    lora = _layer()
    x = torch.randn(5, 12)
    assert torch.equal(lora(x), lora.base(x))  # B = 0 at initialisation


def test_merged_equals_unmerged_and_unmerge_restores_the_weight() -> None:
    lora = _layer()
    nn.init.normal_(lora.lora_B)
    w0 = lora.base.weight.detach().clone()
    x = torch.randn(7, 12)
    y = lora(x)
    lora.merge()
    torch.testing.assert_close(lora(x), y, rtol=1e-5, atol=1e-5)
    lora.unmerge()
    torch.testing.assert_close(lora.base.weight, w0, rtol=0, atol=1e-6)
    torch.testing.assert_close(lora(x), y, rtol=1e-5, atol=1e-5)


def test_adds_r_times_din_plus_dout_parameters_per_matrix() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(10, 30), nn.ReLU(), nn.Linear(30, 6))
    before = sum(p.numel() for p in net.parameters())
    names = apply_lora(net, ["0", "2"], rank=3, alpha=3.0)
    assert names == ["0", "2"]
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    assert trainable == 3 * (10 + 30) + 3 * (30 + 6)
    assert sum(p.numel() for p in net.parameters()) == before + trainable


def test_apply_lora_unknown_target_names_the_layers() -> None:
    with pytest.raises(ValueError, match="qkv"):
        apply_lora(nn.Sequential(nn.Linear(2, 2)), ["qkv"], rank=1, alpha=1.0)


def test_merge_lora_over_a_network() -> None:
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 4))
    apply_lora(net, ["0", "2"], rank=2, alpha=4.0)
    for p in net.parameters():
        if p.requires_grad:
            nn.init.normal_(p)
    x = torch.randn(3, 8)
    y = net(x)
    merge_lora(net)
    torch.testing.assert_close(net(x), y, rtol=1e-5, atol=1e-5)
    unmerge_lora(net)
    torch.testing.assert_close(net(x), y, rtol=1e-5, atol=1e-5)


def test_equals_peft_lora_layer_on_the_same_weights() -> None:
    peft_lora = pytest.importorskip("peft.tuners.lora")
    ours = _layer(12, 20, rank=4, alpha=8.0)
    nn.init.normal_(ours.lora_B)
    cfg = peft_lora.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0)
    theirs = peft_lora.Linear(
        copy.deepcopy(ours.base), "default", cfg, r=4, lora_alpha=8, lora_dropout=0.0
    )
    with torch.no_grad():
        theirs.lora_A["default"].weight.copy_(ours.lora_A)
        theirs.lora_B["default"].weight.copy_(ours.lora_B)
    x = torch.randn(6, 12)
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-6, atol=1e-6)
    theirs.merge()
    ours.merge()
    torch.testing.assert_close(ours.base.weight, theirs.base_layer.weight, rtol=1e-6, atol=1e-6)
    # the initial A is drawn as PEFT draws it (Kaiming-uniform, a = sqrt 5): same bound
    fresh = peft_lora.Linear(nn.Linear(12, 20), "default", cfg, r=4, lora_alpha=8)
    bound = fresh.lora_A["default"].weight.abs().max()
    assert ours.lora_A.abs().max() <= (1 / 12) ** 0.5 + 1e-6 and bound <= (1 / 12) ** 0.5 + 1e-6
