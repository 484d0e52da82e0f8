"""Audio: Griffin-Lim, WaveNet's bits per sample, the audio classifier and FAD, HiFi-GAN.

1. Griffin-Lim (``genzoo.audio.spectral.griffin_lim``, torchaudio's iteration) on the held-out
   speakers of ``speech-digits`` (8 kHz): the magnitude of the STFT (n_fft 256 = 32 ms, hop 64) is
   inverted from zero phase, and the spectral convergence ``20 log10 ||S - |STFT(x_hat)||| / ||S||``
   is reported against the iterations, plain (momentum 0) and fast (momentum 0.99, Perraudin et
   al. 2013). Peer in the same run: librosa's ``griffinlim`` at 100 iterations, same settings.
   Goal: at most -20 dB at 100 iterations for the fast one.
2. WaveNet (``genzoo train wavenet --data speech-digits``) trained for a fixed number of steps
   through the one Trainer, then its exact test NLL in bits per sample on held-out speakers
   (``genzoo.evaluate``), beside the uniform 8 bits and the entropy of the training set's mu-law
   level histogram (the best context-free model), measured in the same run.

3. The audio yardstick (``genzoo.metrics.get_classifier("speech-digits")``, a log-mel CNN trained
   and cached like the image classifiers): its accuracy on the held-out speakers, and the Fréchet
   audio distance (FAD) in its features of the real test clips against the train split (the
   real-vs-real floor).
4. HiFi-GAN (``genzoo train hifigan --data speech-digits``) for a fixed number of steps (or the
   runs given by ``--hifigan-runs``), against fast Griffin-Lim (100 iterations, momentum 0.99) at
   the same STFT settings (n_fft 256, hop 64), on 120 held-out clips (every other one). Every row
   but one starts from the same log-mel, the vocoder's input: Griffin-Lim after the mel is turned
   into a magnitude by the filterbank's pseudo-inverse clamped at 0 (the baseline) or by exact
   non-negative least squares (``genzoo.audio.spectral.griffin_lim_log_mel``); the last row,
   Griffin-Lim from the full ``|STFT|``, gets more than any vocoder (an oracle). Mel L1 (natural
   log, the paper's "mel error"), mel-cepstral distortion (Kubichek 1993,
   ``genzoo.audio.spectral.mel_cepstral_distortion``), log-spectral distance, spectral
   convergence, the classifier's accuracy of the resynthesised clips and their FAD against the
   train split. Vocos runs (``genzoo train vocos --data speech-digits``) are scored the same way
   (``--hifigan-runs`` takes any vocoder run), with ``--refine`` also their spectrogram refined
   by 100 fast Griffin-Lim iterations from its own phase; a Griffin-Lim row in the vocoder
   framing (``genzoo.audio.spectral.griffin_lim_vocoder``, zero phase) sits beside the baseline.
   A ``mel2linear-gl`` run (Tacotron's post-processing network) is scored at each ``--gl-iters``
   count: its learned magnitude, then the Griffin-Lim rows' own iteration, beside the same
   iteration from its untrained magnitude (the pseudo-inverse after the same mel-fit updates).

    python benchmarks/audio.py --threads 1
    python benchmarks/audio.py --threads 1 --steps 1000 --figure docs/img/audio.png
5. Spectrogram diffusion: class-conditional EDM (``genzoo train edm --data mel:speech-digits
   class_conditional=true``) over the log-mel image view (1 x 32 mels x 32 frames, see
   :mod:`genzoo.data.melview`), sampled per digit and decoded by fast Griffin-Lim (100
   iterations): the classifier's accuracy on the generated clips (per asked digit) and their FAD
   against the train split, beside the view's own round trip (real held-out clips -> view ->
   Griffin-Lim), which bounds what the decoder lets through.

    python benchmarks/audio.py --threads 1 --only vocoder --hifigan-steps 300
    python benchmarks/audio.py --threads 1 --only vocoder --hifigan-steps 0   # Griffin-Lim rows
    python benchmarks/audio.py --threads 1 --only vocoder --hifigan-runs R1 R2 --no-griffin-lim
    python benchmarks/audio.py --threads 1 --only vocoder --hifigan-runs VOCOS1 VOCOS2 --refine \
        --no-nnls --docs DIR
    python benchmarks/audio.py --threads 1 --only vocoder --hifigan-runs M2L --gl-iters 100 200
    python benchmarks/audio.py --threads 1 --only specdiff --specdiff-steps 400 --specdiff-out R
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import torch

import genzoo
from genzoo.audio import mu_law_encode
from genzoo.audio import spectral as sp
from genzoo.data import load_dataset

N_FFT, HOP, N_MELS = 256, 64, 64
ITERS = (0, 10, 25, 50, 100, 200)


def held_out_speech(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` clips of the test split, spread over its speakers and digits."""
    test = load_dataset("speech-digits", "test")
    idx = torch.linspace(0, len(test) - 1, n).round().long()
    return test.x[idx].double(), test.y[idx]


def griffin_lim_table(x: torch.Tensor) -> list[dict]:
    mag = sp.spectrogram(x, N_FFT, HOP, power=1.0)  # (B, F, frames)
    rows = []
    for momentum in (0.0, 0.99):
        for n_iter in ITERS:
            t0 = time.perf_counter()
            y = sp.griffin_lim(mag, N_FFT, HOP, n_iter=n_iter, momentum=momentum, length=x.shape[1])
            sec = time.perf_counter() - t0
            sc = sp.spectral_convergence(mag, sp.spectrogram(y, N_FFT, HOP, power=1.0))
            rows.append(
                {"method": "fast" if momentum else "plain", "iters": n_iter, "sc": sc, "sec": sec}
            )
    try:
        import librosa
    except ImportError:
        return rows
    librosa.griffinlim(mag[0, :, :8].numpy(), n_iter=1, hop_length=HOP, n_fft=N_FFT)  # compile
    t0 = time.perf_counter()
    y = librosa.griffinlim(
        mag.numpy(), n_iter=100, hop_length=HOP, n_fft=N_FFT, momentum=0.99, init=None,
        length=x.shape[1], pad_mode="reflect",
    )  # fmt: skip
    sec = time.perf_counter() - t0
    sc = sp.spectral_convergence(mag, sp.spectrogram(torch.from_numpy(y), N_FFT, HOP, power=1.0))
    rows.append({"method": "librosa fast (peer)", "iters": 100, "sc": sc, "sec": sec})
    return rows


def histogram_entropy_bits() -> float:
    """Entropy of the training set's mu-law level histogram, bits per sample."""
    k = mu_law_encode(load_dataset("speech-digits", "train").x).flatten()
    p = torch.bincount(k, minlength=256).double()
    p = p[p > 0] / p.sum()
    return float(-(p * p.log2()).sum())


def wavenet_bits(steps: int, n_test: int, out: Path) -> tuple[dict, float]:
    t0 = time.perf_counter()
    run = genzoo.train(
        "wavenet",
        "speech-digits",
        steps=steps,
        out=out,
        overrides={"progress": False, "tensorboard": False, "n_samples": 4},
    )
    train_sec = time.perf_counter() - t0
    return genzoo.evaluate(run, n=n_test), train_sec


def classifier_table() -> dict:
    """The speech-digits classifier: held-out accuracy and the FAD of real test clips."""
    from genzoo.metrics import frechet_distance, get_classifier

    t0 = time.perf_counter()
    clf = get_classifier("speech-digits")
    sec = time.perf_counter() - t0
    train = load_dataset("speech-digits", "train")
    test = load_dataset("speech-digits", "test")
    f_train, f_test = clf.features(train.x), clf.features(test.x)
    return {
        "clf": clf,
        "sec": sec,
        "train_acc": clf.accuracy(train.x, train.y),
        "test_acc": clf.test_accuracy,
        "fad_test_train": frechet_distance(f_test, f_train),
        "fad_halves": frechet_distance(f_test[0::2], f_test[1::2]),
        "fad_120_train": frechet_distance(f_test[::2], f_train),
        "f_train": f_train,
    }


def vocoder_mel(x: torch.Tensor) -> torch.Tensor:
    """HiFi-GAN's default log-mel (8 kHz, n_fft 256, hop 64, 64 Slaney mels): every row's input
    and the mel L1's features."""
    return sp.vocoder_log_mel(x, 8000, N_FFT, HOP, N_MELS)


def resynthesis_scores(
    x: torch.Tensor, y_hat: torch.Tensor, labels: torch.Tensor, yard: dict
) -> dict:
    """Mel L1, MCD, LSD, SC of ``y_hat`` against ``x`` ``(B, T)``, and what the classifier says."""
    from genzoo.audio.spectral import log_spectral_distance, mel_cepstral_distortion
    from genzoo.metrics import frechet_distance

    y_hat = y_hat.float()[:, : x.shape[1]]
    y_hat = torch.nn.functional.pad(y_hat, (0, x.shape[1] - y_hat.shape[1]))  # (B, T), zeros
    x = x.float()
    s_x = sp.spectrogram(x, N_FFT, HOP, power=1.0)
    s_y = sp.spectrogram(y_hat, N_FFT, HOP, power=1.0)
    clf = yard["clf"]
    return {
        "mel_l1": float((vocoder_mel(y_hat) - vocoder_mel(x)).abs().mean()),
        "mcd": float(mel_cepstral_distortion(x.double(), y_hat.double(), 8000, N_FFT, HOP).mean()),
        "lsd": float(log_spectral_distance(s_x, s_y).mean()),
        "sc": float(sp.spectral_convergence(s_x, s_y).mean()),
        "acc": clf.accuracy(y_hat, labels),
        "fad": frechet_distance(clf.features(y_hat), yard["f_train"]),
    }


def griffin_lim_pinv_mel(log_mel: torch.Tensor) -> torch.Tensor:
    """Fast Griffin-Lim (100) from a vocoder log-mel, the magnitude by the filterbank's
    pseudo-inverse clamped at 0 (the cheap alternative to NNLS; torchaudio's ``InverseMelScale``
    solves the same least-squares problem): ``(B, M, frames)`` -> ``(B, frames * hop)``."""
    fb = sp.mel_filterbank(8000, N_FFT, N_MELS)  # (F, M)
    mel = log_mel.double().exp()  # (B, M, frames)
    mag = (torch.linalg.pinv(fb.T) @ mel).clamp_min(0.0)  # (F, M) @ (B, M, frames) -> (B, F, fr)
    y = sp.griffin_lim(mag, N_FFT, HOP, n_iter=100, momentum=0.99)  # centred frames
    length = log_mel.shape[-1] * HOP
    half = HOP // 2  # a vocoder frame t is centred at t * hop + hop / 2
    return torch.nn.functional.pad(y, (half, length - y.shape[-1] - half))


def docs_media(
    x: torch.Tensor,
    vocoded: torch.Tensor,
    gl: torch.Tensor,
    labels: torch.Tensor,
    folder: Path,
    label: str = "HiFi-GAN",
) -> None:
    """Two held-out clips as WAVs (the words only, 16-bit, 8 kHz): real, the vocoder's (``label``)
    and fast Griffin-Lim from the log-mel; and a picture of their spectrograms."""
    from genzoo.audio import write_wav
    from genzoo.data import dataset_info
    from genzoo.data.audio import DIGITS
    from genzoo.viz import save_spectrograms_png

    folder.mkdir(parents=True, exist_ok=True)
    picks = [int((labels == d).nonzero()[0]) for d in (3, 7)]  # "three" and "seven"
    rows = []
    tag = label.lower().replace("-", "")
    for name, waves in (("real", x), (tag, vocoded), ("griffinlim", gl)):
        for i in picks:
            w = waves[i, : x.shape[1]].float()
            w = torch.nn.functional.pad(w, (0, x.shape[1] - w.shape[0]))  # (T,)
            loud = (x[i].abs() > 0.02 * x[i].abs().max()).nonzero()
            a, b = max(int(loud[0]) - 400, 0), min(int(loud[-1]) + 400, x.shape[1])
            write_wav(folder / f"{DIGITS[int(labels[i])]}-{name}.wav", w[a:b], 8000)
            rows.append(w)
    title = f"held-out speech (2), {label} from log-mel (2), fast Griffin-Lim from log-mel (2)"
    png = "vocoders.png" if tag == "hifigan" else f"vocoders-{tag}.png"
    save_spectrograms_png(
        torch.stack(rows), dataset_info("speech-digits"), folder / png, title=title
    )


def train_hifigan(steps: int, out: Path) -> tuple[Path, float]:
    """Train HiFi-GAN (default config) to ``steps`` at ``out``, or continue a kept run there."""
    from genzoo.runs import open_run

    t0 = time.perf_counter()
    if (out / "config.yaml").is_file():  # trained before (--hifigan-out): continue to ``steps``
        if open_run(out).step < steps:
            genzoo.train(resume=out, steps=steps, overrides={"progress": False})
    else:
        genzoo.train(
            "hifigan",
            "speech-digits",
            steps=steps,
            out=out,
            overrides={"progress": False, "tensorboard": False},
        )
    return out, time.perf_counter() - t0


VOCODER_LABELS = {"hifigan": "HiFi-GAN", "vocos": "Vocos", "degli": "DeGLI",
                  "mel2linear-gl": "mel-to-linear"}  # vocoder rows  # fmt: skip


def without_dnn(model: torch.nn.Module, mel: torch.Tensor, n: int) -> torch.Tensor:
    """A DeGLI run's own iteration with the DNN off in all ``n`` sub-blocks: fast Griffin-Lim
    (``griffin_lim_vocoder``'s iteration) in the model's float32."""
    mag = model.magnitude(mel)
    x, _ = model.iterate(mag, n, dnn_from=n)
    return model.waveform(x, mag)


def vocoder_table(
    runs: list[Path],
    yard: dict,
    docs: Path | None = None,
    griffin_lim: bool = True,
    refine: bool = False,
    nnls: bool = True,
    gl_iters: tuple[int, ...] = (100,),
    degli_iters: tuple[int, ...] = (),
) -> list[dict]:
    """Each vocoder run (HiFi-GAN or Vocos) against Griffin-Lim on 120 held-out clips, all from
    the same log-mel (n_fft 256, hop 64, 64 mels), and Griffin-Lim from the full ``|STFT|`` as an
    oracle (``nnls``: with the NNLS-magnitude row). ``refine``: also each Vocos run's
    spectrogram refined by 100 iterations of fast Griffin-Lim started from its phase
    (``genzoo.audio.spectral.griffin_lim_vocoder``). ``gl_iters``: the iteration counts of the
    vocoder-framing Griffin-Lim rows; ``degli_iters``: more iteration counts for DeGLI runs
    (besides their own ``iters``), each also without the DNN (fast Griffin-Lim in float32)."""
    from genzoo.models.gans.degli import DeepGriffinLim
    from genzoo.models.gans.mel2linear import Mel2Linear, mel_fit
    from genzoo.models.gans.vocos import Vocos
    from genzoo.runs import open_run

    test = load_dataset("speech-digits", "test")
    x, labels = test.x[::2], test.y[::2]  # 120 clips: all 8 held-out speakers, all 10 digits
    mel = vocoder_mel(x)  # (120, 64, 125): the one input of every row but the oracle
    rows = []
    float32_gl: set[int] = set()  # DeGLI's own iteration without the DNN, per count
    fitted: set[int] = set()  # mel-fit counts of the untrained mel-to-linear rows measured
    for run in runs:
        r = open_run(run)
        model = r.model
        if model.config.n_fft != N_FFT or model.config.hop != HOP or model.config.n_mels != N_MELS:
            raise SystemExit(f"{run}: not HiFi-GAN's default STFT settings")
        label = VOCODER_LABELS.get(model.name, model.name)
        if isinstance(model, DeepGriffinLim):  # its own count, the others, each without the DNN
            c = model.config
            k = "every" if c.dnn_iters is None else f"the last {c.dnn_iters}"
            obj = "mel L1 through them" if c.objective == "unrolled" else "denoising L1"
            model.eval()
            for n in dict.fromkeys((c.iters, *degli_iters)):
                with torch.no_grad():
                    t0 = time.perf_counter()
                    y = torch.cat([model.reconstruct(mel[i : i + 40], n)
                                   for i in range(0, len(x), 40)])  # fmt: skip
                    name = f"{label} ({n}), DNN in {k}, {r.step} steps of {obj}"
                    rows.append((name, y, time.perf_counter() - t0))
                    if n in float32_gl:  # measured for an earlier DeGLI run
                        continue
                    float32_gl.add(n)
                    t0 = time.perf_counter()
                    y = torch.cat([without_dnn(model, mel[i : i + 40], n)
                                   for i in range(0, len(x), 40)])  # fmt: skip
                    name = f"the same iteration without the DNN: fast Griffin-Lim ({n}), float32"
                    rows.append((name, y, time.perf_counter() - t0))
            continue
        if isinstance(model, Mel2Linear):  # its magnitude, then the GL rows' own iteration
            model.eval()
            k = model.config.mel_fit
            for n in gl_iters:
                with torch.no_grad():
                    t0 = time.perf_counter()
                    mag = torch.cat([model.magnitude(mel[i : i + 40].double())
                                     for i in range(0, len(x), 40)])  # fmt: skip
                    y = sp.griffin_lim_vocoder(mag, N_FFT, HOP, n, model.config.momentum)
                    name = f"{label} + fast Griffin-Lim ({n}), {r.step} steps"
                    rows.append((name, y, time.perf_counter() - t0))
            if k and k not in fitted:  # the same without the network: the untrained model
                fitted.add(k)
                fb64 = sp.mel_filterbank(8000, N_FFT, N_MELS)
                base = mel_fit(sp.pinv_mel_magnitude(mel.double(), fb64), mel.double(), fb64, k)
                for n in gl_iters:
                    t0 = time.perf_counter()
                    y = sp.griffin_lim_vocoder(base, N_FFT, HOP, n, model.config.momentum)
                    name = (f"fast Griffin-Lim ({n}) from log-mel, pinv magnitude + {k} KL "
                            "mel-fit updates (the untrained model)")  # fmt: skip
                    rows.append((name, y, time.perf_counter() - t0))
            continue
        warm = model.config.mel_warmup
        game = max(r.step - warm, 0) if warm else r.step
        how = f"{r.step} steps" + (
            f": {min(r.step, warm)} mel-L1-only + {game} GAN" if warm else ""
        )
        if isinstance(model, Vocos):  # its warm start may carry more reconstruction terms
            c = model.config
            terms = [(c.lambda_mel, "mel L1"), (c.lambda_phase, "phase"), (c.lambda_mag, "log-mag")]
            recon = " + ".join(f"{w:g} {t}" for w, t in terms if w > 0)
            how = f"{r.step} steps" + (f": {min(r.step, warm)} of {recon}" if warm else "")
            how += f" + {game} GAN" if warm and game else ""
        with torch.no_grad():
            t0 = time.perf_counter()
            y_hg = torch.cat([model.vocode(mel[i : i + 40]) for i in range(0, len(x), 40)])
            rows.append((f"{label}, {how}", y_hg, time.perf_counter() - t0))
            if isinstance(model, Vocos) and refine:  # its STFT as Griffin-Lim's start
                t0 = time.perf_counter()
                model.eval()
                spec = torch.cat([model.spectrogram(mel[i : i + 40]) for i in range(0, len(x), 40)])
                y = sp.griffin_lim_vocoder(spec.abs(), N_FFT, HOP, 100, 0.99, phase=spec.angle())
                name = f"{label}, {how}, + fast Griffin-Lim (100) from its STFT"
                rows.append((name, y, time.perf_counter() - t0))
    if not griffin_lim:  # the HiFi-GAN rows only (the Griffin-Lim rows measured before)
        return [
            {"method": name, "sec": sec, **resynthesis_scores(x, y_hat, labels, yard)}
            for name, y_hat, sec in rows
        ]
    if nnls:
        t0 = time.perf_counter()
        y_nnls = sp.griffin_lim_log_mel(mel, 8000, N_FFT, HOP, n_iter=100, momentum=0.99)
        rows.append(("fast Griffin-Lim (100) from log-mel, NNLS magnitude", y_nnls,
                     time.perf_counter() - t0))  # fmt: skip
    t0 = time.perf_counter()
    y_pinv = griffin_lim_pinv_mel(mel)
    rows.append(
        ("fast Griffin-Lim (100) from log-mel, pinv magnitude", y_pinv, time.perf_counter() - t0)
    )
    mag = sp.pinv_mel_magnitude(mel.double(), sp.mel_filterbank(8000, N_FFT, N_MELS))
    for n in gl_iters:
        t0 = time.perf_counter()
        y_vf = sp.griffin_lim_vocoder(mag, N_FFT, HOP, n, 0.99)  # (120, frames * hop)
        rows.append((f"fast Griffin-Lim ({n}) from log-mel, pinv magnitude, vocoder framing",
                     y_vf, time.perf_counter() - t0))  # fmt: skip
    if docs is not None and runs:
        docs_media(x, rows[0][1], y_pinv, labels, docs, rows[0][0].split(",")[0])
    t0 = time.perf_counter()
    full = sp.spectrogram(x.double(), N_FFT, HOP, power=1.0)
    y = sp.griffin_lim(full, N_FFT, HOP, n_iter=100, momentum=0.99, length=x.shape[1])
    rows.append(("oracle: fast Griffin-Lim (100) from full \\|STFT\\|", y,
                 time.perf_counter() - t0))  # fmt: skip
    rows.append(("real held-out clips (reference)", x, 0.0))
    return [
        {"method": name, "sec": sec, **resynthesis_scores(x, y_hat, labels, yard)}
        for name, y_hat, sec in rows
    ]


def figure(x: torch.Tensor, y: torch.Tensor, run: Path, path: Path) -> None:
    """Spectrograms: held-out speech, its fast Griffin-Lim reconstruction, WaveNet samples."""
    from genzoo.data import dataset_info
    from genzoo.viz import save_spectrograms_png

    mag = sp.spectrogram(x[:2], N_FFT, HOP, power=1.0)
    gl = sp.griffin_lim(mag, N_FFT, HOP, n_iter=100, momentum=0.99, length=x.shape[1])
    cond = y[:2].clone()
    samples = genzoo.sample(run, 2, seed=0, cond=cond).double()
    rows = torch.cat([x[:2], gl, samples])
    title = "held-out speech (2), fast Griffin-Lim from |STFT| (2), WaveNet samples (2)"
    save_spectrograms_png(rows.float(), dataset_info("speech-digits"), path, title=title)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--clips", type=int, default=24, help="held-out clips for Griffin-Lim")
    ap.add_argument("--steps", type=int, default=500, help="WaveNet training steps")
    ap.add_argument("--test", type=int, default=48, help="held-out clips for WaveNet's NLL")
    ap.add_argument("--figure", type=Path, default=None, help="write a spectrogram PNG here")
    ap.add_argument("--hifigan-steps", type=int, default=300, help="HiFi-GAN training steps")
    ap.add_argument("--hifigan-out", type=Path, default=None, help="keep the HiFi-GAN run here")
    ap.add_argument(
        "--hifigan-runs", type=Path, nargs="+", default=None,
        help="vocoder: score these trained vocoder runs, hifigan or vocos (no training); "
        "--hifigan-steps 0 with none: the Griffin-Lim rows only",
    )  # fmt: skip
    ap.add_argument("--no-griffin-lim", action="store_true", help="vocoder: the vocoder rows only")
    ap.add_argument("--no-nnls", action="store_true", help="vocoder: no NNLS Griffin-Lim row")
    ap.add_argument(
        "--refine", action="store_true",
        help="vocoder: add each Vocos run + 100 fast Griffin-Lim iterations from its own STFT",
    )  # fmt: skip
    ap.add_argument(
        "--gl-iters", type=int, nargs="+", default=[100],
        help="vocoder: iteration counts of the vocoder-framing Griffin-Lim rows",
    )  # fmt: skip
    ap.add_argument(
        "--degli-iters", type=int, nargs="+", default=[],
        help="vocoder: more iteration counts for DeGLI runs (besides their own iters)",
    )  # fmt: skip
    ap.add_argument("--docs", type=Path, default=None, help="write WAVs and a picture here")
    ap.add_argument("--specdiff-steps", type=int, default=400, help="EDM steps on the mel view")
    ap.add_argument(
        "--specdiff-out", type=Path, default=None,
        help="the EDM run on the mel view: kept here, or reused if it is already trained there",
    )  # fmt: skip
    ap.add_argument("--per-class", type=int, default=12, help="specdiff: clips drawn per digit")
    ap.add_argument("--guidance", type=float, nargs="+", default=[1.0], help="specdiff: CFG w")
    ap.add_argument(
        "--only", choices=("all", "griffin-lim", "wavenet", "vocoder", "specdiff"), default="all",
        help="run one part only",
    )  # fmt: skip
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.only == "specdiff":
        specdiff_part(args)
        return
    if args.only in ("all", "vocoder"):
        vocoder_part(args)
    if args.only == "vocoder":
        return

    x, y = held_out_speech(args.clips)
    if args.only in ("all", "griffin-lim"):
        griffin_lim_part(x, args)
    if args.only in ("all", "wavenet"):
        wavenet_part(x, y, args)


def vocoder_part(args: argparse.Namespace) -> None:
    yard = classifier_table()
    print(f"Audio classifier {yard['clf'].name} ({yard['clf'].hash}; {yard['sec']:.0f} s to get):")
    print("| what | value |")
    print("|---|---:|")
    print(f"| accuracy, train speakers | {yard['train_acc']:.3f} |")
    print(f"| accuracy, held-out speakers (240 clips) | {yard['test_acc']:.3f} |")
    print(f"| FAD, all 240 real test clips vs train split (960) | {yard['fad_test_train']:.2f} |")
    print(f"| FAD, 120 real test clips (every other) vs train | {yard['fad_120_train']:.2f} |")
    print(f"| FAD, two halves of the test split (120 vs 120) | {yard['fad_halves']:.2f} |")
    runs, sec = list(args.hifigan_runs or []), 0.0
    with tempfile.TemporaryDirectory() as tmp:
        if not runs and args.hifigan_steps > 0:
            run, sec = train_hifigan(args.hifigan_steps, args.hifigan_out or Path(tmp) / "hg")
            runs = [run]
            print(f"\nHiFi-GAN (default config), {args.hifigan_steps} steps, {sec:.0f} s")
        table = vocoder_table(
            runs, yard, args.docs, not args.no_griffin_lim, args.refine, not args.no_nnls,
            tuple(args.gl_iters), tuple(args.degli_iters),
        )  # fmt: skip
    print("\n120 held-out clips (every other) resynthesised from their log-mel (n_fft 256, hop 64,")
    print("64 mels); mel L1 on that log-mel, MCD (Kubichek, 12 MFCCs) and LSD in dB, SC in dB:")
    print(
        "| method | mel L1 | MCD dB | LSD dB | SC dB | classifier accuracy | FAD vs train | sec |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in table:
        print(
            f"| {r['method']} | {r['mel_l1']:.3f} | {r['mcd']:.2f} | {r['lsd']:.2f} | "
            f"{r['sc']:.1f} | {r['acc']:.3f} | {r['fad']:.2f} | {r['sec']:.1f} |"
        )


def griffin_lim_part(x: torch.Tensor, args: argparse.Namespace) -> None:
    print(f"Griffin-Lim on {args.clips} held-out clips, 8 kHz, n_fft {N_FFT}, hop {HOP}:")
    print("| method | iterations | spectral convergence dB (mean) | worst clip dB | seconds |")
    print("|---|---:|---:|---:|---:|")
    for r in griffin_lim_table(x):
        sc = r["sc"]
        print(
            f"| {r['method']} | {r['iters']} | {sc.mean():.1f} | {sc.max():.1f} | {r['sec']:.2f} |"
        )


def wavenet_part(x: torch.Tensor, y: torch.Tensor, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "wavenet"
        res, sec = wavenet_bits(args.steps, args.test, run)
        hist = histogram_entropy_bits()
        print(f"\nWaveNet (default config), {args.steps} steps, {sec:.0f} s of training + grid;")
        print(f"test NLL on {res['n']} held-out clips (8,000 samples each):")
        print("| model | bits per sample |")
        print("|---|---:|")
        print("| uniform over 256 mu-law levels | 8.000 |")
        print(f"| training-set level histogram (context-free) | {hist:.3f} |")
        print(f"| WaveNet, exact NLL | {res['log_prob_bpd']:.3f} |")
        assert math.isclose(res["log_prob_bpd"], -res["log_prob"] / (8000 * math.log(2)))
        if args.figure is not None:
            figure(x, y, run, args.figure)
            print(f"\nwrote {args.figure}")


SPECDIFF_CONFIG = {  # a CPU-sized U-Net for 32 x 32 log-mel images
    "class_conditional": True,
    "sigma_data": 0.25,  # the view's std is ~0.21 (values in [-0.55, 0.66] of [-1, 1])
    "channels": 24,
    "channel_mult": [1, 2, 2],
    "batch_size": 32,
}


def specdiff_part(args: argparse.Namespace) -> None:
    from genzoo.data.melview import view_to_audio
    from genzoo.metrics import frechet_distance
    from genzoo.runs.sample import sample

    spec = "mel:speech-digits"
    yard = classifier_table()
    clf = yard["clf"]
    out = args.specdiff_out or Path(tempfile.mkdtemp()) / "edm-mel"
    t0 = time.perf_counter()
    if not (out / "config.yaml").is_file():
        overrides = {"progress": False, "tensorboard": False, "n_samples": 4}
        genzoo.train("edm", spec, steps=args.specdiff_steps, out=out,
                     overrides={**overrides, **SPECDIFF_CONFIG})  # fmt: skip
    train_sec = time.perf_counter() - t0
    test = load_dataset("speech-digits", "test")
    x, labels = test.x[::2], test.y[::2]  # 120 clips: all 8 held-out speakers, all 10 digits
    view = load_dataset(spec, "test").x[::2]
    t0 = time.perf_counter()
    trip = view_to_audio(view, spec)
    trip_sec = time.perf_counter() - t0
    print(f"\nEDM on {spec} ({SPECDIFF_CONFIG}), {args.specdiff_steps} steps, {train_sec:.0f} s")
    print("(0: reused run); Heun 18 steps (35 NFE); decoded by fast Griffin-Lim (100 iterations):")
    print("| clips | guidance | classifier accuracy | per asked digit 0..9 | FAD vs train | sec |")
    print("|---|---:|---:|---|---:|---:|")
    row = (
        f"| real held-out (120) | - | {clf.accuracy(x, labels):.3f} | - | "
        f"{yard['fad_120_train']:.2f} | 0 |"
    )
    print(row)
    acc = clf.logits(trip).argmax(1) == labels
    per = " ".join(f"{float(acc[labels == k].float().mean()):.2f}" for k in range(10))
    fad = frechet_distance(clf.features(trip), yard["f_train"])
    print(f"| real held-out -> view -> Griffin-Lim (120) | - | {float(acc.float().mean()):.3f} | "
          f"{per} | {fad:.2f} | {trip_sec:.0f} |")  # fmt: skip
    n = args.per_class
    asked = torch.arange(10).repeat_interleave(n)
    for w in args.guidance:
        t0 = time.perf_counter()
        imgs = sample(out, 10 * n, seed=0, cond=asked, guidance=w)
        clips = view_to_audio(imgs, spec)
        sec = time.perf_counter() - t0
        acc = clf.logits(clips).argmax(1) == asked
        per = " ".join(f"{float(acc[asked == k].float().mean()):.2f}" for k in range(10))
        fad = frechet_distance(clf.features(clips), yard["f_train"])
        print(f"| EDM samples ({10 * n}) | {w:g} | {float(acc.float().mean()):.3f} | {per} | "
              f"{fad:.2f} | {sec:.0f} |")  # fmt: skip
        if args.docs is not None and w == args.guidance[0]:
            specdiff_media(imgs, clips, asked, n, args.docs)


def specdiff_media(
    imgs: torch.Tensor, clips: torch.Tensor, asked: torch.Tensor, n: int, folder: Path
) -> None:
    """A picture of the first sample of each digit (log-mel images) and three WAVs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genzoo.audio import write_wav

    folder.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 10, figsize=(15, 1.9))
    for k, ax in enumerate(axes):
        ax.imshow(imgs[k * n, 0].numpy(), origin="lower", aspect="auto", cmap="magma")
        ax.set_title(f"asked {k}", fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(folder / "specdiff.png", dpi=80)
    plt.close(fig)
    for k in (1, 4, 7):
        write_wav(folder / f"specdiff_{k}.wav", clips[k * n], 8000)


if __name__ == "__main__":
    main()
