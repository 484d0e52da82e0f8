"""The README's picture of a comparison: each model's sample grid with its FD, the share of its
samples the classifier recognises, and its steps.

    python benchmarks/compare_figure.py runs/compare --out docs/img/compare-digits.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from PIL import Image


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("folder", help="a genzoo compare output folder (results.json)")
    ap.add_argument("--out", default="compare.png")
    args = ap.parse_args()
    folder = Path(args.folder)
    res = json.loads((folder / "results.json").read_text())
    rows = [r for r in res["rows"] if r.get("status") == "ok"]
    cols = 4
    fig, axes = plt.subplots((len(rows) + cols - 1) // cols, cols, figsize=(8, 5.4), dpi=100)
    for ax in axes.flat:
        ax.axis("off")
    for ax, r in zip(axes.flat, rows, strict=False):
        ax.imshow(Image.open(folder / r["grid"]), interpolation="nearest")
        rec = "" if r.get("recognized") is None else f", {100 * r['recognized']:.0f}% rec."
        steps = round(r["steps"])
        title = f"{r['model']} ({steps:,} step{'s' * (steps != 1)})\nFD {r['fd']:.1f}{rec}"
        ax.set_title(title, fontsize=8)
    fig.suptitle(f"genzoo compare --data {res['data']} (fixed steps per model)", fontsize=10)
    fig.tight_layout()
    fig.savefig(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
