"""DreamBooth subjects and their training set.

:func:`render_subject` draws images of a subject that the ``shapes`` dataset never shows, on its
black background and at its scale: ``striped-square`` (a square with horizontal stripes of two
colours; ``shapes`` squares are plain) or ``star`` (a five-pointed star; ``shapes`` has no star).
Each image jitters the position and size a little, as photographs of one object would.

:class:`SubjectDataset` is DreamBooth's training set (arXiv:2208.12242, Sec. 3.3): the few subject
images with the caption "a [V] [class noun]" and the class images that the base model generated
for "a [class noun]" before training (the prior-preservation set). Its ``x`` / ``text`` are the
subject (example ``i`` is subject image ``i mod k``); ``prior_x`` / ``prior_text`` are class
image ``i mod m``; its length is ``max(k, m)``, so an epoch sees every class image once.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from genzoo.core.errors import DataError
from genzoo.data.base import DataInfo, Dataset, levels_to_model

SUBJECTS = ("striped-square", "star")


def _star_sdf(dx: Tensor, dy: Tensor, r: float) -> Tensor:
    """Signed distance bound (pixels, negative inside) of a five-pointed star of outer radius
    ``r``, pointing up (inner radius 0.45 r): the polygon's inside test by the angle of each
    pixel, with the distance to the boundary along the ray (enough for one pixel of
    anti-aliasing)."""
    ang = torch.atan2(dx, -dy)  # 0 at the top, clockwise
    sector = 2 * math.pi / 5
    a = torch.remainder(ang, sector) - sector / 2  # angle from the sector's middle (inner vertex)
    ri = 0.45 * r
    # the edge from the inner vertex (angle 0 here) to the outer one (angle +-sector/2)
    ox, oy = r * math.sin(sector / 2), r * math.cos(sector / 2)  # outer vertex
    ix, iy = 0.0, ri  # inner vertex
    px, py = a.sin().abs(), a.cos()  # unit ray direction in the sector's frame
    ex, ey = ox - ix, oy - iy
    # ray t * p meets the edge i + s e: t = cross(i, e) / cross(p, e)
    t = (ix * ey - iy * ex) / (px * ey - py * ex)
    rho = torch.sqrt(dx * dx + dy * dy)
    return (rho - t) * 0.8  # radial distance, shrunk towards a distance bound


def render_subject(
    kind: str, n: int, size: int = 16, *, seed: int = 0, colours: tuple[tuple[int, ...], ...] = ()
) -> Tensor:
    """``n`` images ``(n, 3, size, size)`` uint8 of the subject ``kind`` (see the module
    docstring), each jittered in position (within the central third) and size."""
    if kind not in SUBJECTS:
        raise DataError(f"Unknown subject {kind!r}; choose 'striped-square' or 'star'.")
    rng = np.random.default_rng(seed)
    c1, c2 = colours or ((240, 225, 40), (45, 95, 240))  # yellow and blue
    centres = torch.arange(size, dtype=torch.float32) + 0.5
    out = torch.zeros(n, 3, size, size)
    for i in range(n):
        r = float(rng.uniform(0.19, 0.22)) * size
        cx, cy = (float(v) * size for v in rng.uniform(0.4, 0.6, size=2))
        dx = centres.view(1, -1) - cx  # (1, W)
        dy = centres.view(-1, 1) - cy  # (H, 1)
        if kind == "striped-square":
            d = torch.maximum(dx.abs(), dy.abs()) - 0.88 * r  # (H, W)
            band = torch.floor((dy + 0.88 * r) / (0.88 * r / 2)).remainder(2)  # 4 stripes
            rgb = torch.where(band[None] == 0, torch.tensor(c1)[:, None, None].float(),
                              torch.tensor(c2)[:, None, None].float())  # fmt: skip
        else:
            d = _star_sdf(dx.expand(size, size), dy.expand(size, size), 1.4 * r)
            rgb = torch.tensor(c1)[:, None, None].float().expand(3, size, size)
        cover = (0.5 - d).clamp(0.0, 1.0)  # one pixel of anti-aliasing, as shapes renders
        out[i] = rgb * cover
    return out.round().clamp(0, 255).to(torch.uint8)


class SubjectDataset(Dataset):
    """Subject images with their caption, and class images with theirs (module docstring)."""

    def __init__(
        self,
        info: DataInfo,
        subject: Tensor,
        subject_text: Tensor,
        prior: Tensor | None = None,
        prior_text: Tensor | None = None,
    ) -> None:
        if subject.shape[0] == 0:
            raise DataError("DreamBooth needs at least one subject image.")
        super().__init__(info, subject, None)
        self.k = int(subject.shape[0])
        self.subject_text = subject_text.expand(self.k, -1) if subject_text.ndim == 2 else None
        if self.subject_text is None:
            raise DataError("subject_text must be caption tokens (1 or k, L).")
        self.prior = prior
        self.prior_text = prior_text
        self.m = 0 if prior is None else int(prior.shape[0])

    def __len__(self) -> int:
        return max(self.k, self.m)

    def get_raw(self, idx: Tensor) -> tuple[Tensor, Tensor | None]:
        assert self.x is not None
        return self.x[idx.cpu() % self.k].to(idx.device), None

    def extra(
        self, idx: Tensor, *, dequantize: bool = False, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        cpu = idx.cpu()
        assert self.subject_text is not None
        out = {"text": self.subject_text[cpu % self.k].to(idx.device)}
        if self.prior is not None and self.prior_text is not None:
            j = cpu % self.m
            assert self.info.levels is not None
            out["prior_x"] = levels_to_model(self.prior[j], self.info.levels).to(idx.device)
            out["prior_text"] = self.prior_text.expand(self.m, -1)[j].to(idx.device)
        return out
