"""Embedded audio datasets, no download: ``speech-digits`` and ``tones``.

Audio examples are mono waveforms, float32 in [-1, 1], of a fixed length: ``DataInfo(kind="audio",
shape=(T,), sample_rate=R)``; models see them as they are (``levels`` is None: a model that
quantizes, such as WaveNet's mu-law, does so itself). Both sets take ``?rate=8000`` (default) or
``?rate=16000``.

``speech-digits``: the words "zero" .. "nine" spoken by eSpeak NG (:mod:`genzoo.data.espeak`),
40 speakers, each a voice variant of its own (``m1``, ``f3``, ``Andrea``, ...) on an English voice
(``en``, ``en-us``, ``en-gb-scotland``, ...) with its own pitch, pitch range and speaking rate; each
speaker says each digit :data:`REPEATS` times with small changes of pitch and rate, a gain and
white noise 30-45 dB below the speech. Speakers 0-31 form the train split (960 clips), 32-39 the
test split (240 clips): no speaker, and no voice variant, is in both. The clips are synthesized at
22,050 Hz, trimmed to the speech (samples within 40 dB of the peak), resampled to the rate asked
for (``scipy.signal.resample_poly``) and centred in one second. Everything follows from
:data:`SPEECH_SEED`; the first use builds the set (about half a minute) and caches it under
``$GENZOO_CACHE/audio`` (default ``~/.cache/genzoo/audio``) as safetensors, keyed by a hash of
what determines it.

``tones``: procedural notes, half a second each, with exact labels: the class is the pitch, one
of the 12 semitones from C4 (261.6 Hz) to B4 (493.9 Hz); each note has a timbre (sine,
band-limited square, or a plucked string by the Karplus-Strong algorithm), an attack and an
exponential decay, a random phase and a gain. Generated from fixed seeds on every load (a second).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from urllib.parse import parse_qs

import numpy as np
import torch

from genzoo.core.errors import DataError, choices
from genzoo.data.base import DataInfo, Dataset

RATES = (8000, 16000)  # sample rates a spec may ask for (?rate=N)
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
NOTES = ("C4", "C#4", "D4", "D#4", "E4", "F4", "F#4", "G4", "G#4", "A4", "A#4", "B4")
TIMBRES = ("sine", "square", "pluck")
SPEECH_SEED = 2024
SPEECH_VERSION = 1  # bump when the synthesis recipe changes: old caches are not reused
N_SPEAKERS, N_TRAIN_SPEAKERS = 40, 32
REPEATS = 3  # utterances of each digit per speaker
LANGUAGES = ("en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan")
VARIANTS = (  # eSpeak NG voice variants that sound like a person (robots and whispers left out)
    *(f"m{i}" for i in range(1, 9)),
    *(f"f{i}" for i in range(1, 6)),
    *("Alex", "Alicia", "Andrea", "Andy", "Annie", "Denis", "Diogo", "Gene", "Henrique", "Hugo"),
    *("Jacky", "Lee", "Marco", "Mario", "Michael", "Mike", "Storm", "adam", "anika", "antonio"),
    *("aunty", "belinda", "benjamin", "boris", "caleb", "david", "ed", "edward", "grandma"),
    *("grandpa", "gustave", "ian", "iven", "john", "linda", "max", "michel", "miguel", "norbert"),
)
TONE_SIZES = {"train": (1200, 11), "test": (360, 12)}  # split -> (notes, seed)
TONE_SECONDS = 0.5


def _parse(spec: str, base: str) -> int:
    """The sample rate of ``base[?rate=N]``."""
    query = spec[len(base) :]
    if query and not query.startswith("?"):
        raise DataError(f"Unknown dataset {spec!r}; did you mean {base!r}?")
    opts = parse_qs(query[1:], keep_blank_values=True) if query else {}
    bad = sorted(set(opts) - {"rate"})
    if bad:
        raise DataError(f"Unknown option {bad[0]!r} of {base!r}; choose 'rate'.")
    rate = opts.get("rate", ["8000"])[-1]
    if rate not in {str(r) for r in RATES}:
        raise DataError(f"rate={rate!r} of {base!r} is not offered; choose {choices(RATES)}.")
    return int(rate)


def is_audio_spec(spec: str) -> bool:
    return spec.split("?")[0] in ("speech-digits", "tones")


def audio_info(spec: str) -> DataInfo:
    """What ``speech-digits[?rate=N]`` or ``tones[?rate=N]`` declares."""
    base = spec.split("?")[0]
    rate = _parse(spec, base)
    seconds, names = (1.0, DIGITS) if base == "speech-digits" else (TONE_SECONDS, NOTES)
    return clip_info(spec, rate, seconds, names)


def clip_info(name: str, rate: int, seconds: float, names: tuple[str, ...]) -> DataInfo:
    """The DataInfo of labelled mono clips of ``seconds`` at ``rate`` Hz in [-1, 1]."""
    return DataInfo(
        name=name,
        kind="audio",
        shape=(int(rate * seconds),),
        levels=None,
        n_classes=len(names),
        value_range=(-1.0, 1.0),
        class_names=names,
        sample_rate=rate,
    )


class AudioDataset(Dataset):
    """Waveforms ``x`` ``(N, T)`` float32 in [-1, 1], labels ``y`` ``(N,)``; ``speaker`` ``(N,)``
    holds the speaker of each speech clip (-1 for tones)."""

    def __init__(self, info: DataInfo, x: torch.Tensor, y: torch.Tensor, speaker: torch.Tensor):
        super().__init__(info, x, y)
        self.speaker = speaker


def load_audio(spec: str, split: str) -> AudioDataset:
    info = audio_info(spec)
    if spec.startswith("tones"):
        n, seed = TONE_SIZES[split]
        x, y = make_tones(n, info.sample_rate, seed)
        return AudioDataset(info, x, y, torch.full((n,), -1, dtype=torch.long))
    data = _speech_digits(info.sample_rate)
    keep = data["split"] == (0 if split == "train" else 1)
    return AudioDataset(info, data["x"][keep], data["y"][keep], data["speaker"][keep])


# --- tones --------------------------------------------------------------------------------------
def note_frequency(k: int | np.ndarray) -> np.ndarray:
    """Frequency in Hz of class ``k`` (0 = C4): equal temperament, A4 = 440 Hz."""
    return 440.0 * 2.0 ** ((np.asarray(k) + 60 - 69) / 12.0)


def karplus_strong(
    f0: float, n: int, rate: int, rng: np.random.Generator, up: int = 8
) -> np.ndarray:
    """A plucked string (Karplus & Strong 1983) at ``rate`` Hz, ``up`` times the output rate:
    the string's initial shape circulates in a delay line through a two-point average with a
    slight loss, ``y[t] = x[t] + g (y[t - N] + y[t - N - up]) / 2``. The average takes samples
    ``up`` apart, so it filters the loop as the classic algorithm does at the output rate, while
    the delay ``N + up / 2 = rate / f0`` is tuned to 1 / ``up`` of an output sample (a few cents).

    Written by hand (no library has it); the recursion runs a delay line's length at a time, so
    it needs ``n / N`` vector operations.
    """
    period = max(up + 1, round(rate / f0 - up / 2))  # N
    lag = period + up  # the farther of the two taps
    # the string's shape when released: a triangle plucked at a fraction p of its length (partial
    # h has amplitude ~ sin(h pi p) / h^2, so the fundamental is the strongest), plus a little noise
    p = rng.uniform(0.2, 0.5)
    u = np.arange(period + up) / (period + up)
    burst = np.where(u < p, u / p, (1 - u) / (1 - p)) + 0.05 * rng.standard_normal(u.size)
    burst -= burst.mean()  # no DC: the loop filter would keep it at 0 Hz
    y = np.zeros(n + lag)
    y[:lag] = burst  # the delay line's initial content
    g = 0.996
    for start in range(lag, n + lag, period):
        stop = min(start + period, n + lag)
        y[start:stop] = g * 0.5 * (y[start - period : stop - period] + y[start - lag : stop - lag])
    return y[lag:]


def make_tones(n: int, rate: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` notes ``(n, T)`` at ``rate`` and their pitch classes; timbres cycle through
    :data:`TIMBRES`, pitches are drawn uniformly."""
    from scipy.signal import resample_poly

    rng = np.random.default_rng(seed)
    length = int(rate * TONE_SECONDS)
    t = np.arange(length) / rate
    x = np.zeros((n, length))
    y = rng.integers(0, len(NOTES), n)
    for i in range(n):
        f0 = float(note_frequency(y[i]))
        timbre = TIMBRES[i % len(TIMBRES)]
        phase = rng.uniform(0, 2 * np.pi)
        if timbre == "sine":
            wave = np.sin(2 * np.pi * f0 * t + phase)
        elif timbre == "square":  # band-limited: odd partials below Nyquist, 4/(pi k) each
            ks = np.arange(1, int(rate / 2 / f0) + 1, 2)
            wave = (4 / np.pi) * (
                np.sin(np.outer(ks, 2 * np.pi * f0 * t + phase)) / ks[:, None]
            ).sum(0)
        else:  # pluck: Karplus-Strong at 8x the rate, then decimated
            wave = resample_poly(karplus_strong(f0, 8 * length, 8 * rate, rng), 1, 8)
        attack = rng.uniform(0.005, 0.05)  # seconds of linear rise
        decay = rng.uniform(0.15, 0.6)  # time constant of the exponential decay, seconds
        env = np.minimum(t / attack, 1.0) * np.exp(-np.maximum(t - attack, 0) / decay)
        wave = wave * env
        x[i] = rng.uniform(0.3, 0.9) * wave / max(np.abs(wave).max(), 1e-8)
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y).long()


# --- speech-digits ------------------------------------------------------------------------------
def speakers() -> list[dict]:
    """The 40 speakers: voice, pitch, pitch range, rate; indices < 32 are the train split's."""
    rng = np.random.default_rng(SPEECH_SEED)
    variants = rng.permutation(len(VARIANTS))[:N_SPEAKERS]  # one variant per speaker
    out = []
    for i, v in enumerate(variants):
        out.append(
            {
                "voice": f"{LANGUAGES[int(rng.integers(len(LANGUAGES)))]}+{VARIANTS[v]}",
                "pitch": int(rng.integers(25, 76)),
                "range": int(rng.integers(20, 81)),
                "wpm": int(rng.integers(150, 211)),
                "split": 0 if i < N_TRAIN_SPEAKERS else 1,
            }
        )
    return out


def speech_plan() -> list[dict]:
    """Every clip: speaker, digit, and its own pitch / rate jitter, gain and noise level."""
    rng = np.random.default_rng(SPEECH_SEED + 1)
    plan = []
    for s, spk in enumerate(speakers()):
        for digit in range(len(DIGITS)):
            for _ in range(REPEATS):
                plan.append(
                    {
                        "speaker": s,
                        "digit": digit,
                        "pitch": int(np.clip(spk["pitch"] + rng.integers(-5, 6), 0, 100)),
                        "wpm": int(spk["wpm"] + rng.integers(-10, 11)),
                        "gain": float(rng.uniform(0.4, 0.9)),
                        "snr_db": float(rng.uniform(30, 45)),
                        "noise_seed": int(rng.integers(2**31)),
                    }
                )
    return plan


def audio_cache_dir() -> Path:
    """``$GENZOO_CACHE/audio``, else ``~/.cache/genzoo/audio`` (beside the classifiers' cache)."""
    root = os.environ.get("GENZOO_CACHE")
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "genzoo") / "audio"


def _speech_key(rate: int) -> str:
    from genzoo.data.espeak import espeak_version

    header = {"version": SPEECH_VERSION, "rate": rate, "espeak": espeak_version()}
    blob = json.dumps([header, speakers(), speech_plan()], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _speech_digits(rate: int) -> dict[str, torch.Tensor]:
    """The whole set (both splits) at ``rate``: from the cache, or synthesized and cached."""
    from genzoo.core.io import CheckpointError, load_tensors, save_tensors

    path = audio_cache_dir() / f"speech-digits-{rate}-{_speech_key(rate)}.safetensors"
    if path.is_file():
        try:
            return load_tensors(path)
        except CheckpointError:
            pass  # a damaged cache entry is rebuilt
    data = build_speech_digits(rate)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_tensors(path, data)
    return data


def _trim(wave: np.ndarray) -> np.ndarray:
    """The part of a clip from the first to the last sample within 40 dB of its peak."""
    loud = np.flatnonzero(np.abs(wave) >= 0.01 * np.abs(wave).max())
    return wave[loud[0] : loud[-1] + 1] if loud.size else wave


def build_speech_digits(rate: int, plan: list[dict] | None = None) -> dict[str, torch.Tensor]:
    """Synthesize the clips of ``plan`` (default: :func:`speech_plan`) at ``rate``: ``x`` ``(N,
    rate)``, ``y``, ``speaker`` and ``split`` (0 train, 1 test)."""
    from scipy.signal import resample_poly

    from genzoo.data.espeak import ESPEAK_RATE, Utterance, synthesize

    plan = speech_plan() if plan is None else plan
    spk = speakers()
    utterances = [
        Utterance(
            DIGITS[c["digit"]],
            spk[c["speaker"]]["voice"],
            c["pitch"],
            spk[c["speaker"]]["range"],
            c["wpm"],
        )
        for c in plan
    ]
    g = math.gcd(ESPEAK_RATE, rate)
    x = np.zeros((len(plan), rate), dtype=np.float32)  # one second per clip
    for i, (c, wave) in enumerate(zip(plan, synthesize(utterances), strict=True)):
        w = resample_poly(_trim(wave.astype(np.float64) / 32768.0), rate // g, ESPEAK_RATE // g)
        w = c["gain"] * w[:rate] / max(np.abs(w).max(), 1e-8)
        start = (rate - w.size) // 2  # centred
        x[i, start : start + w.size] = w
        noise = np.random.default_rng(c["noise_seed"]).standard_normal(rate)
        x[i] += (np.sqrt(np.mean(w**2)) * 10 ** (-c["snr_db"] / 20) * noise).astype(np.float32)
    return {
        "x": torch.from_numpy(np.clip(x, -1.0, 1.0)),
        "y": torch.tensor([c["digit"] for c in plan], dtype=torch.long),
        "speaker": torch.tensor([c["speaker"] for c in plan], dtype=torch.long),
        "split": torch.tensor([spk[c["speaker"]]["split"] for c in plan], dtype=torch.long),
    }
