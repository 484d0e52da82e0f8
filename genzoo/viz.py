"""Pictures: image grids, point scatter plots and audio spectrograms, written as PNG; video
clips as a grid of frames (PNG) or an animation (GIF, or MP4 where a backend is installed)."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from genzoo.core.errors import ConfigError, GenzooWarning
from genzoo.data.base import DataInfo, model_to_unit
from genzoo.data.text import tokenizer_of


def _finite_unit(x: Tensor, info: DataInfo) -> Tensor:
    """Model-space images -> [0, 1] floats for display; non-finite values (a diverged model's)
    are drawn at the ends of the value range (``+inf`` at the top, ``-inf`` and NaN at the
    bottom) with a warning naming their count, never cast to arbitrary bytes."""
    x = x.detach().float().cpu()
    n_bad = int((~torch.isfinite(x)).sum())
    if n_bad:
        lo, hi = info.value_range
        warnings.warn(
            f"{n_bad} of {x.numel()} image values to draw are not finite (NaN or infinite); "
            f"they are drawn as {hi:g} (+inf) or {lo:g} (-inf and NaN).",
            GenzooWarning,
            stacklevel=3,
        )
        x = torch.nan_to_num(x, nan=lo, posinf=hi, neginf=lo)
    return model_to_unit(x, info.levels)


def image_grid(x: Tensor, info: DataInfo, nrow: int | None = None, pad: int = 1) -> np.ndarray:
    """(B, C, H, W) model-space images -> an (H', W', 3) uint8 grid."""
    x = _finite_unit(x, info)
    b, c, h, w = x.shape
    nrow = nrow or max(1, math.ceil(math.sqrt(b)))
    ncol = math.ceil(b / nrow)
    grid = torch.ones(3, ncol * (h + pad) + pad, nrow * (w + pad) + pad)
    for i in range(b):
        r, col = divmod(i, nrow)
        img = x[i] if c == 3 else x[i, :1].expand(3, h, w)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        grid[:, top : top + h, left : left + w] = img
    return (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def video_grid(x: Tensor, info: DataInfo, pad: int = 1) -> np.ndarray:
    """Clips ``(B, T, C, H, W)`` in model space -> an ``(H', W', 3)`` uint8 grid: one row per clip,
    one column per frame."""
    t = x.shape[1]
    return image_grid(x.flatten(0, 1), info, nrow=t, pad=pad)  # (B*T, C, H, W), T per row


def video_frames(x: Tensor, info: DataInfo, pad: int = 1, scale: int = 1) -> np.ndarray:
    """Clips ``(B, T, C, H, W)`` -> the animation's frames ``(T, H', W', 3)`` uint8: frame ``t``
    shows frame ``t`` of every clip side by side in a square-ish grid, enlarged ``scale`` times
    (nearest neighbour)."""
    frames = np.stack([image_grid(x[:, i], info, pad=pad) for i in range(x.shape[1])])
    if scale > 1:
        frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    return frames


VIDEO_SUFFIXES = (".gif", ".mp4")


def save_video(
    x: Tensor, info: DataInfo, path: str | Path, fps: float = 4.0, scale: int | None = None
) -> None:
    """Write clips ``(B, T, C, H, W)`` as an animation: ``.gif`` through Pillow (every frame
    kept, looping), ``.mp4`` through imageio with its PyAV or ffmpeg plugin. ``scale`` enlarges
    the frames (default: to about 256 pixels across)."""
    path = Path(path)
    if path.suffix not in VIDEO_SUFFIXES:
        raise ConfigError(f"{str(path)!r}: a video file ends in .gif or .mp4.")
    if scale is None:
        side = image_grid(x[:, 0], info).shape[1]
        scale = max(1, 256 // max(side, 1))
    frames = video_frames(x, info, scale=scale)  # (T, H', W', 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gif":
        from PIL import Image

        imgs = [Image.fromarray(f) for f in frames]
        imgs[0].save(
            path,
            save_all=True,
            append_images=imgs[1:],
            duration=round(1000 / fps),
            loop=0,
            disposal=1,
            optimize=False,
        )
        return
    check_video_backend(path)
    import imageio.v3 as iio

    iio.imwrite(path, frames, fps=fps)


def check_video_backend(path: str | Path) -> None:
    """One sentence if ``path`` is an MP4 file and no writer for it is installed (imageio with
    PyAV or imageio-ffmpeg); GIFs need only Pillow."""
    import importlib.util

    if Path(path).suffix != ".mp4":
        return
    has = importlib.util.find_spec("imageio") is not None and any(
        importlib.util.find_spec(m) is not None for m in ("av", "imageio_ffmpeg")
    )
    if not has:
        raise ConfigError(
            f"{str(path)!r}: writing MP4 needs imageio with PyAV (pip install imageio av), which "
            "is not installed here; write a .gif instead."
        )


def save_images_folder(x: Tensor, info: DataInfo, folder: str | Path) -> list[Path]:
    """One PNG per sample, at the data's own resolution: ``folder/sample_0000.png``, ... (images
    ``(B, C, H, W)`` in model space, written as 8-bit grey or RGB). Returns the files."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    unit = _finite_unit(x, info)  # (B, C, H, W) in [0, 1]
    pixels = (unit * 255).round().clamp(0, 255).to(torch.uint8)
    paths = []
    for i, img in enumerate(pixels):
        arr = img[0].numpy() if img.shape[0] == 1 else img.permute(1, 2, 0).numpy()  # (H, W[, 3])
        paths.append(folder / f"sample_{i:04d}.png")
        Image.fromarray(arr).save(paths[-1])
    return paths


def png_out(path: str | Path) -> Path:
    """``path`` as a :class:`Path` when it names a PNG file; else one sentence (checked before
    the work whose picture it will hold)."""
    if Path(path).suffix.lower() != ".png":
        raise ConfigError(f"--out {str(path)!r} must end in .png.")
    return Path(path)


def save_samples_png(
    x: Tensor,
    info: DataInfo,
    path: str | Path,
    reference: Tensor | None = None,
    title: str = "",
    nrow: int | None = None,
) -> None:
    """Save samples as a picture: an image grid, or a scatter plot of points (over the data)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if info.kind == "text":  # token ids -> a text file next to where the picture would be
        tok = tokenizer_of(info)
        texts = [tok.decode(row.tolist()) for row in x.detach().cpu().long()]
        path.with_suffix(".txt").write_text("\n\n----\n\n".join(texts))
        return
    if info.kind == "audio":
        save_spectrograms_png(x, info, path, title=title)
        return
    if info.kind in ("images", "video"):
        from PIL import Image

        grid = video_grid(x, info) if info.kind == "video" else image_grid(x, info, nrow=nrow)
        scale = max(1, 512 // max(grid.shape[0], 1))
        img = Image.fromarray(grid)
        if scale > 1:
            img = img.resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST)
        img.save(path)
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = x.detach().float().cpu().reshape(x.shape[0], -1).numpy()
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    if reference is not None:
        ref = reference.detach().float().cpu().numpy()
        ax.scatter(ref[:, 0], ref[:, 1], s=2, c="#bbbbbb", label="data", alpha=0.5)
    ax.scatter(pts[:, 0], pts[:, 1], s=2, c="#1f77b4", label="samples")
    lo, hi = info.value_range
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    ax.set_title(title or info.name)
    ax.legend(loc="upper right", markerscale=4)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def save_spectrograms_png(
    x: Tensor, info: DataInfo, path: str | Path, title: str = "", max_rows: int = 8
) -> None:
    """Waveforms ``(B, T)`` -> a column of log-power spectrograms (matplotlib's ``specgram``:
    Hann windows of 32 ms, 75 % overlap, dB), the first ``max_rows`` of them, labelled in
    seconds and kHz."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    wave = x.detach().float().cpu().reshape(x.shape[0], -1).numpy()[:max_rows]
    rate = info.sample_rate or 8000
    nfft = 1 << max(4, round(math.log2(0.032 * rate)))  # about 32 ms
    rows = wave.shape[0]
    fig, axes = plt.subplots(rows, 1, figsize=(6, 1.3 * rows + 0.4), dpi=100, squeeze=False)
    for i, ax in enumerate(axes[:, 0]):
        ax.specgram(
            wave[i], NFFT=nfft, Fs=rate, noverlap=3 * nfft // 4, cmap="magma", vmin=-120, vmax=-20
        )
        ax.set_ylabel("kHz", fontsize=7)
        ax.set_yticks([0, rate / 4, rate / 2], [f"{v / 1000:g}" for v in (0, rate / 4, rate / 2)])
        ax.tick_params(labelsize=7)
        if i < rows - 1:
            ax.set_xticks([])
    axes[-1, 0].set_xlabel("seconds", fontsize=7)
    fig.suptitle(title or info.name, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
