"""DiT backbone: adaLN-Zero starts as the identity map; patch layout round trip; conditioning."""

import torch

from genzoo.nn.dit import DiT, sincos_2d


def test_adaln_zero_output_is_zero_at_init():
    net = DiT(1, 8, patch=2, width=32, depth=2, heads=2, n_classes=10)
    x = torch.randn(3, 1, 8, 8)
    out = net(x, torch.randn(3), torch.tensor([0, 1, 10]))
    assert out.shape == x.shape and torch.count_nonzero(out) == 0


def test_unpatchify_inverts_patchify():
    """With an embedding that copies patches and a decoder that copies them back: identity."""
    p, c, res = 2, 3, 8
    width = p * p * c  # 12, divisible by 4
    net = DiT(c, res, patch=p, width=width, depth=0, heads=1)
    with torch.no_grad():
        # embed: token channel k = pixel (ci, di, dj) of the patch, in (c, p, p) order
        net.embed.weight.zero_()
        net.embed.bias.zero_()
        for k in range(width):
            ci, rest = divmod(k, p * p)
            di, dj = divmod(rest, p)
            net.embed.weight[k, ci, di, dj] = 1
        net.pos.zero_()
        # decoder: output index (di, dj, co) ordered as in the reshape (p, p, C)
        net.out.weight.zero_()
        for di in range(p):
            for dj in range(p):
                for co in range(c):
                    net.out.weight[(di * p + dj) * c + co, co * p * p + di * p + dj] = 1
        net.norm = torch.nn.Identity()
    x = torch.randn(2, c, res, res)
    assert torch.allclose(net(x, torch.zeros(2)), x, atol=1e-6)


def test_positions_are_distinct_and_bounded():
    pos = sincos_2d(32, 4, 4)
    assert pos.shape == (16, 32) and pos.abs().max() <= 1
    assert torch.cdist(pos, pos).fill_diagonal_(1).min() > 0.1


def test_class_label_changes_output_once_trained_weights_are_nonzero():
    torch.manual_seed(0)
    net = DiT(1, 8, patch=2, width=32, depth=1, heads=2, n_classes=10)
    for prm in net.parameters():
        torch.nn.init.normal_(prm, std=0.05)
    x = torch.randn(1, 1, 8, 8).expand(2, 1, 8, 8)
    out = net(x, torch.zeros(2), torch.tensor([3, 7]))
    assert not torch.allclose(out[0], out[1])
