"""Gatys' neural style transfer: optimise the pixels of an image so that its features match the
content image's at one layer and its Gram matrices match the style image's at several.

Gatys, Ecker & Bethge, "A Neural Algorithm of Artistic Style", arXiv:1508.06576: the total loss
``alpha L_content + beta L_style`` (Eq. (7)) is minimised over the pixels of ``x``, the feature
network fixed. The paper starts from white noise and uses L-BFGS; here ``x`` starts from the
content image (a common choice that needs far fewer steps) and Adam steps on the pixels, each
followed by clamping to the model range [-1, 1] (a projected gradient method, which L-BFGS in
``torch.optim`` does not offer). The content layer is the feature network's last tap.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from genzoo.nn.style import content_loss, gram_matrix, gram_style_loss


@dataclass
class GatysResult:
    """The stylised images ``(B, C, H, W)`` and per-example losses ``(B,)`` before and after."""

    image: Tensor
    style_before: Tensor  # Gram (style) loss of the starting image (the content)
    style_after: Tensor  # Gram (style) loss of the result
    content_error: Tensor  # relative content-feature error ||F - P||^2 / ||P||^2 of the result

    @property
    def style_reduction(self) -> Tensor:
        """``1 - after / before`` per example."""
        return 1.0 - self.style_after / self.style_before.clamp_min(1e-12)


def gatys(
    content: Tensor,
    style: Tensor,
    features: nn.Module,
    steps: int = 300,
    style_weight: float = 1e3,
    content_weight: float = 1.0,
    lr: float = 0.02,
) -> GatysResult:
    """Stylise ``content`` ``(B, C, H, W)`` with ``style`` (same shape, or one image for all) in
    model space through ``features`` (``x -> [F_1, ..., F_L]``, fixed) for ``steps`` Adam steps.

    ``style_weight / content_weight`` is the paper's ``beta / alpha`` (Eq. (7)); both losses are
    relative (see :func:`genzoo.nn.style.gram_style_loss`), so their scales do not depend on the
    feature network.
    """
    if style.shape[0] == 1 and content.shape[0] > 1:
        style = style.expand(content.shape[0], -1, -1, -1)
    with torch.no_grad():
        targets = [gram_matrix(f) for f in features(style)]  # A_l of Eq. (5)
        p = features(content)[-1]  # P of Eq. (1)
    x = content.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)

    def losses(img: Tensor) -> tuple[Tensor, Tensor]:
        feats = features(img)
        return gram_style_loss(feats, targets), content_loss(feats[-1], p)

    with torch.no_grad():
        style_before, _ = losses(x)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        s, c = losses(x)
        total = (style_weight * s + content_weight * c).sum()  # Eq. (7), summed over images
        total.backward()
        opt.step()
        with torch.no_grad():
            x.clamp_(-1.0, 1.0)  # the projection onto the model range
    with torch.no_grad():
        style_after, content_error = losses(x)
    return GatysResult(x.detach(), style_before, style_after, content_error)
