"""The comparison report: markdown, JSON (written by the caller) and one self-contained HTML page
(inline images and styles, no scripts, opens offline)."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from genzoo.core.io import atomic_write_text

LIKELIHOOD = {"exact": "exact", "bound": "bound", "ode": "ODE", "none": "—"}


def _f(v: Any, nd: int = 2) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.{nd}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _cells(r: dict[str, Any]) -> list[str]:
    if r.get("status") != "ok":
        return [r["family"], r["model"], r.get("status", "?")] + ["—"] * (len(HEAD) - 3)
    nll = "—" if r["nll_bpd"] is None else f"{r['nll_bpd']:.3f} ({LIKELIHOOD[r['nll_kind']]})"
    stab = f"±{r['fd_std']:.2f}" if r["seeds"] > 1 else "1 seed"
    if r["diverged"]:
        stab += f", {r['diverged']} diverged"
    return [
        r["family"],
        r["model"],
        _f(r["params"]),
        _f(round(r["steps"])) if r.get("steps") is not None else "—",
        f"{r['train_time_s']:.0f} s",
        nll,
        _f(r["fd"]),
        "—" if r.get("recognized") is None else f"{100 * r['recognized']:.0f}%",
        _f(r["precision"]),
        _f(r["recall"]),
        _f(r["samples_per_s"], 0),
        _f(int(r["nfe"])),
        stab,
    ]


HEAD = [
    "Family",
    "Model",
    "Params",
    "Steps",
    "Train time",
    "NLL (bits/dim)",
    "FD ↓",
    "Recognised",
    "Precision",
    "Recall",
    "Samples/s",
    "NFE",
    "Stability (FD)",
]


def _training(results: dict[str, Any]) -> str:
    if results.get("budget"):
        return f"Budget {results['budget']} per model and seed (Steps: the steps it bought)"
    if results.get("steps"):
        return f"{results['steps']:,} steps per model and seed"
    return "A fixed number of steps per model (Steps)"


def _recognised_note(results: dict[str, Any]) -> str:
    rec = results["floor"].get("recognized")
    if rec is None:
        return ""
    return (
        f" Recognised: the share of samples to which the {results['extractor']} classifier gives "
        f"one class a probability of at least 0.9 (held-out real test images: {100 * rec:.0f}%)."
    )


def _notes(results: dict[str, Any]) -> list[str]:
    """One line per model with something to add: modes or classes covered, or why it failed."""
    lines = []
    for r in results["rows"]:
        if r.get("status") == "ok" and r.get("modes_covered") is not None:
            lines.append(
                f"{r['model']}: {r['modes_covered']:.0f} modes covered, "
                f"high-quality rate {r['hq_rate']:.3f}"
            )
        elif r.get("status") == "ok" and r.get("classes_covered") is not None:
            lines.append(f"{r['model']}: {r['classes_covered']:.0f} classes recognised")
        if r.get("status") != "ok":
            lines.append(f"{r['model']}: {r.get('status')} — {r.get('error')}")
    return lines


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"# genzoo compare: {results['data']}",
        "",
        f"{_training(results)}, {results['seeds']} seed(s), "
        f"{results['n_samples']} samples per model, features: {results['extractor']} "
        f"({results['extractor_hash'][:12]}), device {results['device']}, {results['date']}.",
        "",
        "| " + " | ".join(HEAD) + " |",
        "|" + "---|" * len(HEAD),
    ]
    for r in results["rows"]:
        lines.append("| " + " | ".join(_cells(r)) + " |")
    fl = results["floor"]
    lines += [
        "",
        f"Floor (real training data against the test split): FD {fl['fd']:.2f}, precision "
        f"{fl['precision']:.2f}, recall {fl['recall']:.2f}." + _recognised_note(results),
        "",
    ]
    lines += [f"- {n}" for n in _notes(results)]
    lines.append("")
    for r in results["rows"]:
        if r.get("status") == "ok":
            lines.append(f"![{r['model']}]({r['grid']})")
    return "\n".join(lines) + "\n"


def _png_b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def _plot_b64(results: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in results["rows"] if r.get("status") == "ok"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), dpi=100)
    ax = axes[0]
    for r in ok:
        ax.scatter(r["nfe"], r["fd"], s=40)
        ax.annotate(
            r["model"], (r["nfe"], r["fd"]), fontsize=8, xytext=(4, 4), textcoords="offset points"
        )
    ax.set_xscale("log")
    ax.set_xlabel("network evaluations per sample")
    ax.set_ylabel("Fréchet distance (lower is better)")
    ax.set_title("Quality against sampling cost")
    ax = axes[1]
    nll = [r for r in ok if r["nll_bpd"] is not None]
    ax.barh([r["model"] for r in nll], [r["nll_bpd"] for r in nll], color="#4c72b0")
    ax.set_xlabel("test NLL, bits/dim (exact or bound)")
    ax.set_title("Likelihood")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


CSS = (
    "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;"
    "max-width:1100px;color:#222;padding:0 1rem}h1{font-size:1.6rem}"
    "table{border-collapse:collapse;width:100%;font-size:.9rem}"
    "th,td{padding:.35rem .5rem;border-bottom:1px solid #ddd;text-align:right}"
    "th:nth-child(-n+2),td:nth-child(-n+2){text-align:left}th{background:#f4f6f8}"
    "tr:hover{background:#fafafa}.grids{display:flex;flex-wrap:wrap;gap:1rem}"
    ".grids figure{margin:0;text-align:center;font-size:.85rem}"
    ".grids img{width:320px;image-rendering:auto;border:1px solid #ccc}"
    ".grids figcaption{font-size:1rem;font-weight:600;margin-top:.3rem}"
    ".muted{color:#666;font-size:.85rem}"
)


def _caption(r: dict[str, Any]) -> str:
    text = f"{r['model']}: FD {r['fd']:.1f}"
    if r.get("recognized") is not None:
        text += f", {100 * r['recognized']:.0f}% recognised"
    if r.get("steps") is not None:
        text += f", {round(r['steps']):,} steps"
    return text


def to_html(results: dict[str, Any], out: Path) -> str:
    rows = []
    for r in results["rows"]:
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in _cells(r)) + "</tr>")
    figs = []
    for r in results["rows"]:
        if r.get("status") == "ok" and (out / r["grid"]).is_file():
            figs.append(
                f'<figure><img alt="{html.escape(r["model"])} samples" '
                f'src="data:image/png;base64,{_png_b64(out / r["grid"])}">'
                f"<figcaption>{html.escape(_caption(r))}</figcaption></figure>"
            )
    fl = results["floor"]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEAD)
    title = html.escape(results["data"])
    meta = (
        f"{html.escape(_training(results))}, "
        f"{results['seeds']} seed(s), {results['n_samples']} samples per model; features: "
        f"{html.escape(results['extractor'])} ({html.escape(results['extractor_hash'][:12])}); "
        f"device {results['device']}; {results['date']}."
    )
    floor = (
        f"Floor (real training data against the test split): FD {fl['fd']:.2f}, "
        f"precision {fl['precision']:.2f}, recall {fl['recall']:.2f}." + _recognised_note(results)
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in _notes(results))
    plot = _plot_b64(results)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>genzoo compare: {title}</title><style>{CSS}</style></head><body>\n"
        f'<h1>genzoo compare: {title}</h1>\n<p class="muted">{meta}</p>\n'
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>\n"
        f'<p class="muted">{html.escape(floor)}</p>\n'
        + (f"<ul>{notes}</ul>\n" if notes else "")
        + "<h2>Quality, cost and likelihood</h2>\n"
        f'<img alt="plots" style="max-width:100%" src="data:image/png;base64,{plot}">\n'
        f'<h2>Samples</h2><div class="grids">{"".join(figs)}</div>\n</body></html>\n'
    )


def write_reports(results: dict[str, Any], out: Path) -> None:
    atomic_write_text(out / "report.md", markdown(results))
    atomic_write_text(out / "report.html", to_html(results, out))
