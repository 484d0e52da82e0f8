"""AdaIN decoder probes (issue 19): train only AdaIN's decoder over a chosen frozen encoder with a
chosen optimisation, then score it as ``benchmarks/biggan_style.py style`` scores.

Encoders (frozen while the decoder trains):

- ``own``: ``small_cnn_body(1, width)`` trained first for ``--encoder-steps`` Adam steps as the
  ``adain`` model trains it (a classifier of the digit classes and the texture kinds);
  ``own-content``: the same, a classifier of the digit classes only (no textures);
- ``classifier:<dataset>``: the body of genzoo's cached feature classifier of that dataset
  (``classifier:digits`` is the scoring network itself; ``classifier:mnist5k`` is another
  network, trained on mnist5k's train digits only).

Score: 64 ``styled:mnist5k`` test pairs (test digits 0-63 with their textures) and the
benchmark's 16 pairs (mnist5k test digits 0-3 x ``texture:KIND@i``), both in the features of the
digits classifier (relu1, relu2, relu3): the Gram-loss reduction ``1 - after / before`` (before:
the content image itself), the content-feature error at relu3, the reduction averaged per texture
kind then over the four kinds; "var H / W": the pixel variance within a column / within a row.
``--fresh-draw N`` adds a selection set drawn exactly as the benchmark draws its 16 pairs but with
indices of its own: ``mnist5k@i`` x ``texture:KIND@i`` for ``i`` from ``--fresh-seed`` (default
100) on, ``4 N`` pairs, not filtered in any way; the textures' mean pixel values are printed.

    python benchmarks/adain_probe.py --encoder own --steps 500 --clip 1 --threads 1
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from genzoo.data import load_dataset  # noqa: E402
from genzoo.data.textures import KINDS  # noqa: E402
from genzoo.metrics import get_classifier  # noqa: E402
from genzoo.nn.style import (  # noqa: E402
    SMALL_CNN_TAPS,
    AdaINDecoder,
    adain,
    content_loss,
    gram_matrix,
    gram_style_loss,
    small_cnn_body,
    stats_style_loss,
    tap_features,
)
from genzoo.runs.stylize import read_input  # noqa: E402


def train_own_encoder(
    width: int, steps: int, batch: int, lr: float, seed: int, textures: bool = True
) -> torch.nn.Module:
    """``textures=False``: a classifier of the content classes only (no texture images)."""
    ds = load_dataset("styled:mnist5k", "train")
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    body = small_cnn_body(1, width)
    head = torch.nn.Linear(4 * width, ds.info.n_classes + len(KINDS))
    opt = torch.optim.Adam([*body.parameters(), *head.parameters()], lr=lr)
    for _ in range(steps):
        b = ds.get(torch.randint(len(ds), (batch,), generator=g))
        if textures:
            logits = head(body(torch.cat([b["x"], b["style"]])).mean(dim=(2, 3)))
            y = torch.cat([b["y"], b["style_y"] + ds.info.n_classes])
        else:
            logits, y = head(body(b["x"]).mean(dim=(2, 3))), b["y"]
        loss = F.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([*body.parameters(), *head.parameters()], 1.0)
        opt.step()
    return body


class MultiLevelDecoder(torch.nn.Module):
    """A probe's variant, not the paper's: AdaIN at relu3 **and** relu2; the relu3 decoder's
    upsampled ``stage3`` output is concatenated with ``AdaIN`` at relu2 before ``stage2``."""

    def __init__(
        self, width: int, decoder_width: int | None, relu1: bool = False, tanh: bool = False
    ) -> None:
        super().__init__()
        self.base = AdaINDecoder(1, width, (28, 28), decoder_width)
        self.relu1, self.tanh = relu1, tanh
        first = self.base.stage2[0]
        self.base.stage2[0] = torch.nn.Conv2d(
            first.in_channels + 2 * width, first.out_channels, 3, padding=1, padding_mode="reflect"
        )
        if relu1:  # ``--levels 3``: AdaIN at relu1 too, concatenated before ``stage1``
            first = self.base.stage1[0]
            self.base.stage1[0] = torch.nn.Conv2d(
                first.in_channels + width, first.out_channels, 3, padding=1, padding_mode="reflect"
            )

    def forward(self, ts: list[torch.Tensor]) -> torch.Tensor:
        t1, t2, t3 = ts if self.relu1 else (None, *ts)
        b = self.base
        h = F.interpolate(b.stage3(t3), size=b.sizes[1], mode="nearest")
        h = torch.cat([h, t2], dim=1)  # (B, 2d + 2w, 14, 14)
        h = F.interpolate(b.stage2(h), size=b.sizes[0], mode="nearest")
        if t1 is not None:
            h = torch.cat([h, t1], dim=1)  # (B, d + w, 28, 28)
        out = b.stage1(h)
        return torch.tanh(out) if self.tanh else out  # ``--tanh``: the image in (-1, 1)


def _multi(fc: list[torch.Tensor], fs: list[torch.Tensor], levels: int = 2) -> list[torch.Tensor]:
    """AdaIN at the last ``levels`` of the taps 1, 6, 11 (2: relu2, relu3; 3: relu1 too)."""
    return [adain(fc[i], fs[i]) for i in range(3 - levels, 3)]


def with_style_pool(ds, pool: int):
    """``ds`` (``styled:mnist5k`` train) with its styles drawn from a pool of ``pool`` textures
    made as the dataset makes its own (``make_textures`` with the train pool's seed 10, so the
    first 800 are the dataset's pool), example ``i`` taking texture ``i mod pool``."""
    from genzoo.data.textures import make_textures

    x, kind = make_textures(pool, 28, 1, seed=10)
    levels = torch.round(x.double() * (ds.info.levels - 1) / 255.0).to(torch.uint8)
    pick = torch.arange(len(ds)) % pool
    ds.style, ds.kind = levels[pick], kind[pick]
    return ds


def with_sparse_extra(ds, extra: int, seed: int = 12):
    """``ds`` (``styled:mnist5k`` train) with ``extra`` sparse dots (mean pixel value below 0.3)
    added to the dataset's pool of 800: dots drawn by the dataset's generator from a stream of
    their own (``default_rng(seed)``), kept when sparse; example ``i`` takes texture ``i mod
    (800 + extra)``. The sparse dots' share of the styles rises from about 4 % to about
    ``(34 + extra) / (800 + extra)``."""
    from genzoo.data.textures import _styles, make_texture

    pool, kind = _styles("mnist5k", "train")
    rng, extra_x = np.random.default_rng(seed), []
    while len(extra_x) < extra:
        tex = make_texture("dots", 28, 1, rng)
        lv = np.rint(np.rint(tex * 255.0) * (ds.info.levels - 1) / 255.0)  # as _styles rounds
        if lv.mean() / (ds.info.levels - 1) < 0.3:
            extra_x.append(torch.from_numpy(lv.astype(np.uint8)))
    if extra_x:
        pool = torch.cat([pool, torch.stack(extra_x)])
        kind = torch.cat([kind, torch.full((extra,), KINDS.index("dots"), dtype=kind.dtype)])
    pick = torch.arange(len(ds)) % len(pool)
    ds.style, ds.kind = pool[pick], kind[pick]
    return ds


def sparse_draw(n: int, start: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` pairs ``mnist5k@i`` x ``texture:dots@i`` (drawn as the benchmark draws) for the
    first indices ``i >= start`` whose dots are sparse (mean pixel value below 0.3)."""
    cs, ss = [], []
    i = start
    while len(cs) < n:
        if i > 999:
            raise SystemExit(f"--sparse-draw {n} from {start} runs past mnist5k@999")
        s = read_input(f"texture:dots@{i}", like=torch.zeros(1, 1, 28, 28))
        if float((s.mean() + 1) / 2) < 0.3:
            cs.append(read_input(f"mnist5k@{i}"))
            ss.append(s)
        i += 1
    print(f"sparse draw: {n} pairs, i = {start}..{i - 1}", flush=True)
    return torch.cat(cs), torch.cat(ss), torch.full((n,), KINDS.index("dots"))


def benchmark_pairs(indices: range) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pairs drawn as ``benchmarks/biggan_style.py style`` draws its own (there: ``range(4)``):
    content ``mnist5k@i`` (test split) with style ``texture:KIND@i`` for each kind and ``i`` in
    ``indices``; returns contents, styles and kind labels, kind by kind."""
    cs, ss, ks = [], [], []
    for k, kind in enumerate(KINDS):
        for i in indices:
            c = read_input(f"mnist5k@{i}")
            cs.append(c)
            ss.append(read_input(f"texture:{kind}@{i}", like=c))
            ks.append(k)
    return torch.cat(cs), torch.cat(ss), torch.tensor(ks)


def score(decoder, enc, scorer, pairs, k: int = -1) -> dict:
    """``k``: the index of AdaIN's layer among the encoder's taps (-1: the last)."""
    out = {}
    for name, (c, s, kind) in pairs.items():
        with torch.no_grad():
            if isinstance(decoder, MultiLevelDecoder):
                levels = 3 if decoder.relu1 else 2
                raw = decoder(_multi(enc(c), enc(s), levels))
            else:
                t = adain(enc(c)[k], enc(s)[k])
                raw = decoder(t, torch.Generator().manual_seed(0))
            img = raw.clamp(-1, 1)  # the image as scored (stylize clamps into the model range)
            targets = [gram_matrix(f) for f in scorer(s)]
            fc = scorer(c)
            before = gram_style_loss(fc, targets)
            fo = scorer(img)
            after = gram_style_loss(fo, targets)
            cerr = content_loss(fo[-1], fc[-1])
            after_raw = gram_style_loss(scorer(raw), targets)  # shown: what the clamp costs
        red = 1 - after / before.clamp_min(1e-12)
        red_raw = 1 - after_raw / before.clamp_min(1e-12)
        raw_kind = [float(red_raw[kind == k].mean()) for k in range(len(KINDS))]
        raw_present = [v for v in raw_kind if not math.isnan(v)]
        per_kind = [float(red[kind == k].mean()) for k in range(len(KINDS))]  # nan: kind absent
        present = [v for v in per_kind if not math.isnan(v)]
        out[name] = {
            "reduction": sum(present) / len(present),
            "per_kind": per_kind,
            "content_error": float(cerr.mean()),
            "var_h": float(img.var(dim=2).mean()),
            "var_w": float(img.var(dim=3).mean()),
            "image": img,
            "unclamped": sum(raw_present) / len(raw_present),
            "outside": float((raw.abs() > 1).float().mean()),
        }
    return out


def gain(enc, x: torch.Tensor, iters: int = 20) -> dict:
    """The encoder's gain at relu3 around images ``x``: the top singular value of its Jacobian
    (power iteration with autograd, per image, then the mean) relative to ``||f(x)|| / ||x||``,
    and the relative feature change for small period-2 stripe patterns (vertical, horizontal)
    and for a smooth pattern of the same norm."""
    f = lambda z: enc(z)[-1]  # noqa: E731
    fx = f(x).detach()
    scale = fx.flatten(1).norm(dim=1) / x.flatten(1).norm(dim=1)
    v = torch.randn_like(x)
    for _ in range(iters):
        v = v / v.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
        _, jv = torch.autograd.functional.jvp(f, x, v)
        _, vjp = torch.autograd.functional.vjp(f, x, jv)
        v = vjp
    v = v / v.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    _, jv = torch.autograd.functional.jvp(f, x, v)
    sigma = jv.flatten(1).norm(dim=1)
    h, w = x.shape[2:]
    ii = torch.arange(h).view(-1, 1).expand(h, w).float()
    jj = torch.arange(w).view(1, -1).expand(h, w).float()
    pats = {
        "vertical stripes (period 2)": torch.cos(torch.pi * jj),
        "horizontal stripes (period 2)": torch.cos(torch.pi * ii),
        "smooth (period 28)": torch.cos(2 * torch.pi * jj / w) * torch.cos(2 * torch.pi * ii / h),
    }
    out = {"sigma_max / (|f(x)|/|x|)": float((sigma / scale).mean())}
    for name, pat in pats.items():
        d = 0.05 * pat / pat.norm() * x.flatten(1).norm(dim=1).view(-1, 1, 1)  # 5% of |x|
        d = d.unsqueeze(1)
        rel = (f(x + d) - fx).flatten(1).norm(dim=1) / fx.flatten(1).norm(dim=1)
        out[f"feature change, {name}"] = float(rel.mean().detach())
    return out


def report(res: dict, step: int, gn_first: float, gn_last: float, t0: float) -> None:
    for name, r in res.items():
        kinds = " ".join(f"{k} {100 * v:.1f}%" for k, v in zip(KINDS, r["per_kind"], strict=True))
        print(
            f"RESULT step {step} {name}: reduction {100 * r['reduction']:.1f}% ({kinds}); "
            f"content error {r['content_error']:.3f}; var H / W {r['var_h']:.3f} / "
            f"{r['var_w']:.3f}; unclamped output {100 * r['unclamped']:.1f}% "
            f"({100 * r['outside']:.1f}% of pixels outside [-1, 1]); "
            f"grad norm {gn_first:.0f} -> {gn_last:.0f}; "
            f"{time.perf_counter() - t0:.0f} s",
            flush=True,
        )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--encoder", default="own")
    p.add_argument("--width", type=int, default=16, help="own encoder's width")
    p.add_argument("--encoder-steps", type=int, default=300)
    p.add_argument("--steps", type=int, default=500, help="decoder steps")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-decay", type=float, default=0.0, help="paper: lr / (1 + d * step)")
    p.add_argument("--clip", type=float, default=1.0, help="gradient-norm clip (0: off)")
    p.add_argument("--style-weight", type=float, default=10.0)
    p.add_argument(
        "--norm",
        default="none",
        choices=["none", "scale"],
        help="scale: divide L_c and each layer's L_s by the target's feature scale",
    )
    p.add_argument("--decoder-width", type=int, default=0, help="0: the encoder's width")
    p.add_argument(
        "--schedule", default="inverse", choices=["inverse", "cosine"], help="lr schedule"
    )
    p.add_argument(
        "--style-loss",
        default="stats",
        choices=["stats", "gram"],
        help="stats: the paper's Eq. (13); gram: Gatys' Gram loss (the scored one)",
    )
    p.add_argument(
        "--taps",
        default="1,6,11",
        help="encoder ReLUs of L_s (the last is AdaIN's and L_c's); 1,3,6,8,11: every ReLU",
    )
    p.add_argument(
        "--adain-layer",
        type=int,
        default=3,
        choices=[2, 3],
        help="the tap AdaIN and L_c sit at: 3 relu3 (7 x 7), 2 relu2 (14 x 14); L_s keeps --taps",
    )
    p.add_argument(
        "--noise", type=int, default=0, help="noise channels at every decoder stage (0: none)"
    )
    p.add_argument(
        "--multi-level",
        action="store_true",
        help="AdaIN at relu2 and relu3 (a variant; L_c at both; needs --taps 1,6,11)",
    )
    p.add_argument(
        "--levels",
        type=int,
        default=2,
        choices=[2, 3],
        help="with --multi-level: 2, AdaIN at relu2 and relu3; 3, at relu1 too (L_c at each)",
    )
    p.add_argument(
        "--tanh",
        action="store_true",
        help="with --multi-level: the decoder's output through tanh, so the loss sees an image "
        "in (-1, 1) as scored (default: unbounded, clamped only when scored)",
    )
    p.add_argument(
        "--gatys-peer",
        action="store_true",
        help="also print Gatys (the benchmark's peer: 300 Adam steps, style weight 1e3, in the "
        "scoring features) on every scored set, before the decoder trains (shown)",
    )
    p.add_argument(
        "--style-pool",
        type=int,
        default=0,
        help="training styles from a pool of this many textures (0: the dataset's 800)",
    )
    p.add_argument(
        "--sparse-extra",
        type=int,
        default=0,
        help="add this many sparse dots (mean pixel value below 0.3) to the training pool of "
        "800 (the style distribution re-weighted towards sparse textures; 0: none)",
    )
    p.add_argument(
        "--sparse-draw",
        type=int,
        default=0,
        help="also score N pairs mnist5k@i x texture:dots@i for the first i >= "
        "--sparse-draw-seed whose dots are sparse (0: none)",
    )
    p.add_argument("--sparse-draw-seed", type=int, default=400, help="first index of --sparse-draw")
    p.add_argument(
        "--hide-bench",
        action="store_true",
        help="leave the benchmark's 16 pairs out (neither scored nor printed: blind selection)",
    )
    p.add_argument(
        "--sparse-dots",
        action="store_true",
        help="also score on up to 64 held-out styled:mnist5k test pairs (index >= 64) whose "
        "style is dots with a mean pixel value below 0.3 (sparse dots)",
    )
    p.add_argument(
        "--fresh-draw",
        type=int,
        default=0,
        help="also score N x 4 pairs drawn as the benchmark draws its 16: mnist5k@i x "
        "texture:KIND@i for i = --fresh-seed .. --fresh-seed + N - 1 (0: none)",
    )
    p.add_argument("--fresh-seed", type=int, default=100, help="first index of --fresh-draw")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--picture", default="")
    p.add_argument("--gain", action="store_true", help="only measure the encoder's gain")
    p.add_argument("--score-at", default="", help="also score after these steps (comma list)")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    scorer_body = get_classifier("digits").net.body.eval().requires_grad_(False)

    def scorer(x):
        return tap_features(scorer_body, x, SMALL_CNN_TAPS)

    if a.encoder in ("own", "own-content"):
        textures = a.encoder == "own"
        body = train_own_encoder(a.width, a.encoder_steps, a.batch, 1e-3, a.seed, textures)
        what = "digits + texture kinds" if textures else "digits only"
        enc_name = f"own width {a.width}, {a.encoder_steps} classifier steps ({what})"
    elif a.encoder.startswith("classifier:"):
        body = get_classifier(a.encoder.partition(":")[2]).net.body
        enc_name = a.encoder
    else:
        raise SystemExit(f"unknown encoder {a.encoder!r}")
    body = body.eval().requires_grad_(False)
    width = body[0].out_channels

    taps = tuple(int(i) for i in a.taps.split(","))

    def enc(x):
        return tap_features(body, x, taps)

    t_enc = time.perf_counter() - t0
    if a.gain:
        x = load_dataset("styled:mnist5k", "test").get(torch.arange(16))["x"]
        for k, v in gain(enc, x).items():
            print(f"GAIN {enc_name}: {k} {v:.4f}", flush=True)
        return
    torch.manual_seed(a.seed + 1)
    dec = AdaINDecoder(1, width, (28, 28), a.decoder_width or None, a.adain_layer, a.noise)
    at = taps.index(SMALL_CNN_TAPS[a.adain_layer - 1])  # AdaIN's layer among the taps of L_s
    if a.tanh and not a.multi_level:
        raise SystemExit("--tanh is a probe of the multi-level decoder; add --multi-level")
    if a.multi_level:
        torch.manual_seed(a.seed + 1)
        dec = MultiLevelDecoder(width, a.decoder_width or None, a.levels == 3, a.tanh)
    opt = torch.optim.Adam(dec.parameters(), lr=a.lr)
    if a.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, a.steps)
    else:
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1.0 / (1.0 + a.lr_decay * i))
    ds = load_dataset("styled:mnist5k", "train")
    if a.style_pool:  # example i takes texture i mod P of a pool of P (the dataset's: 800)
        ds = with_style_pool(ds, a.style_pool)
    if a.sparse_extra:
        ds = with_sparse_extra(ds, a.sparse_extra)
    g = torch.Generator().manual_seed(a.seed + 2)
    test = load_dataset("styled:mnist5k", "test").get(torch.arange(64))
    pairs = {"64 pairs": (test["x"], test["style"], test["style_y"])}
    if not a.hide_bench:
        pairs["bench 16"] = benchmark_pairs(range(4))
    if a.fresh_draw:  # drawn as the benchmark draws its pairs, with indices and seeds of its own
        idx = range(a.fresh_seed, a.fresh_seed + a.fresh_draw)
        if idx.start < 4 or idx.stop > 1000:
            raise SystemExit(
                f"--fresh-seed {a.fresh_seed} with --fresh-draw {a.fresh_draw} draws indices "
                f"{idx.start}..{idx.stop - 1}; they must lie in 4..999 (0-3 are the benchmark's)."
            )
        name = f"fresh {4 * a.fresh_draw}"
        pairs[name] = benchmark_pairs(idx)
        print(f"{name}: mnist5k@i x texture:KIND@i, i = {idx.start}..{idx.stop - 1}", flush=True)
        c, s, kinds = pairs[name]
        mean01 = (s.mean(dim=(1, 2, 3)) + 1) / 2  # each texture's mean pixel value in [0, 1]
        for k, kind in enumerate(KINDS):
            m = mean01[kinds == k].sort().values
            print(
                f"{name} {kind}: texture mean pixel value min {m[0]:.3f} median "
                f"{m[len(m) // 2]:.3f} max {m[-1]:.3f}; below 0.3: {int((m < 0.3).sum())} of "
                f"{len(m)}; all: {' '.join(f'{v:.2f}' for v in mean01[kinds == k].tolist())}",
                flush=True,
            )
    if a.sparse_draw:  # fresh sparse dots, drawn as the benchmark draws
        pairs["sparse draw"] = sparse_draw(a.sparse_draw, a.sparse_draw_seed)
    if a.sparse_dots:  # held out: not the 64 pairs, not the benchmark's textures
        all_test = load_dataset("styled:mnist5k", "test")
        rest = all_test.get(torch.arange(64, len(all_test)))
        mean01 = (rest["style"].mean(dim=(1, 2, 3)) + 1) / 2  # model space -> [0, 1]
        dots = KINDS.index("dots")
        keep = torch.nonzero((rest["style_y"] == dots) & (mean01 < 0.3)).flatten()[:64]
        pairs["sparse dots"] = (rest["x"][keep], rest["style"][keep], rest["style_y"][keep])
        print(f"sparse dots: {len(keep)} pairs", flush=True)
    print(
        f"encoder: {enc_name} ({t_enc:.0f} s); decoder lr {a.lr} decay {a.lr_decay} clip "
        f"{a.clip} norm {a.norm} lambda {a.style_weight} steps {a.steps} decoder width "
        f"{a.decoder_width or width} schedule {a.schedule} style loss {a.style_loss} taps {taps} "
        f"AdaIN at relu{a.adain_layer} noise {a.noise}",
        flush=True,
    )
    if a.gatys_peer:  # the benchmark's peer on the same pairs, as `genzoo stylize` runs it
        from genzoo.models.style import gatys

        for name, (c, s, kind) in pairs.items():
            r = gatys(c, s, scorer, steps=300, style_weight=1e3)
            red = r.style_reduction
            per_kind = [float(red[kind == k].mean()) for k in range(len(KINDS))]
            present = [v for v in per_kind if not math.isnan(v)]
            kinds = " ".join(f"{k} {100 * v:.1f}%" for k, v in zip(KINDS, per_kind, strict=True))
            print(
                f"GATYS {name}: reduction {100 * sum(present) / len(present):.1f}% ({kinds}); "
                f"content error {float(r.content_error.mean()):.3f}",
                flush=True,
            )
    gn_first = gn_last = 0.0
    for step in range(1, a.steps + 1):
        b = ds.get(torch.randint(len(ds), (a.batch,), generator=g))
        with torch.no_grad():
            fc, fs = enc(b["x"]), enc(b["style"])
            t = _multi(fc, fs, a.levels) if a.multi_level else adain(fc[at], fs[at])
        fo = enc(dec(t))
        if a.norm == "scale":  # every term divided by its target's scale (per example)
            lc = (fo[at] - t).flatten(1).norm(dim=1) / t.flatten(1).norm(dim=1).clamp_min(1e-6)
            ls = torch.zeros_like(lc)
            for f, tt in zip(fo, fs, strict=True):
                one = stats_style_loss([f], [tt])
                from genzoo.nn.style import channel_stats

                mu, sd = channel_stats(tt)
                scale = (mu.flatten(1).norm(dim=1) + sd.flatten(1).norm(dim=1)).clamp_min(1e-6)
                ls = ls + one / scale
        elif a.style_loss == "gram":
            lc = (fo[at] - t).flatten(1).norm(dim=1)
            ls = gram_style_loss(fo, [gram_matrix(f) for f in fs])
        elif a.multi_level:  # L_c at every AdaIN layer
            at_taps = range(3 - a.levels, 3)
            lc = sum((fo[i] - ti).flatten(1).norm(dim=1) for i, ti in zip(at_taps, t, strict=True))
            ls = stats_style_loss(fo, fs)
        else:
            lc = (fo[at] - t).flatten(1).norm(dim=1)
            ls = stats_style_loss(fo, fs)
        loss = (lc + a.style_weight * ls).mean()
        opt.zero_grad()
        loss.backward()
        if a.clip > 0:
            gn = float(torch.nn.utils.clip_grad_norm_(dec.parameters(), a.clip))
        else:
            gn = float(torch.nn.utils.clip_grad_norm_(dec.parameters(), math.inf))
        opt.step()
        sched.step()
        gn_first = gn if step == 1 else gn_first
        gn_last = gn
        if step % a.log_every == 0 or step == a.steps:
            print(
                f"step {step}: L_c {float(lc.mean().detach()):.3f} "
                f"L_s {float(ls.mean().detach()):.3f} "
                f"grad norm {gn:.1f} ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
        if str(step) in a.score_at.split(",") and step != a.steps:
            report(score(dec, enc, scorer, pairs, at), step, gn_first, gn_last, t0)
    res = score(dec, enc, scorer, pairs, at)
    report(res, a.steps, gn_first, gn_last, t0)
    if a.picture and "bench 16" in pairs:
        from genzoo.data import dataset_info
        from genzoo.viz import save_samples_png

        c, s, _ = pairs["bench 16"]
        idx = torch.arange(0, 16, 4)
        grid = torch.cat([c[idx], s[idx], res["bench 16"]["image"][idx]])
        save_samples_png(grid, dataset_info("mnist5k"), Path(a.picture), nrow=4)


if __name__ == "__main__":
    main()
