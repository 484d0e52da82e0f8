"""Audio: Griffin-Lim phase reconstruction of held-out speech, and WaveNet's test bits per sample.

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

    python benchmarks/audio.py --threads 1
    python benchmarks/audio.py --threads 1 --steps 1000 --figure docs/img/audio.png
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

N_FFT, HOP = 256, 64
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
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    x, y = held_out_speech(args.clips)
    print(f"Griffin-Lim on {args.clips} held-out clips, 8 kHz, n_fft {N_FFT}, hop {HOP}:")
    print("| method | iterations | spectral convergence dB (mean) | worst clip dB | seconds |")
    print("|---|---:|---:|---:|---:|")
    for r in griffin_lim_table(x):
        sc = r["sc"]
        print(
            f"| {r['method']} | {r['iters']} | {sc.mean():.1f} | {sc.max():.1f} | {r['sec']:.2f} |"
        )

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


if __name__ == "__main__":
    main()
