"""Offline speech synthesis with eSpeak NG through ctypes (the ``espeakng-loader`` wheel ships
``libespeak-ng.so`` and its voice data; nothing is downloaded).

eSpeak NG keeps state from one utterance to the next inside the library (its output for the
same text and voice differs slightly between successive calls, whatever seed is set), but a
freshly initialised library gives the same samples bit for bit. So :func:`synthesize` starts a
child process (small and single-threaded: no torch), initialises the library there once, and
says each utterance in a fork of that child: every waveform depends only on its own utterance,
not on the order of the list or on what was synthesized before (on Windows, which cannot fork,
only on the list).
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from genzoo.core.errors import DataError

ESPEAK_RATE = 22_050  # eSpeak NG's output sample rate
_SYNCHRONOUS = 2  # AUDIO_OUTPUT_SYNCHRONOUS
_CHARS_UTF8 = 1  # espeakCHARS_UTF8
_END_PAUSE = 0x1000  # espeakENDPAUSE
_RATE, _VOLUME, _PITCH, _RANGE = 1, 2, 3, 4  # espeak_PARAMETER


@dataclass(frozen=True)
class Utterance:
    """One call to eSpeak NG: ``text`` in ``voice`` (language + "+" variant) at ``pitch`` and
    ``pitch_range`` (0..100) and ``wpm`` words per minute."""

    text: str
    voice: str
    pitch: int
    pitch_range: int
    wpm: int


def espeak_version() -> str:
    """The installed espeakng-loader version (part of every speech cache key)."""
    from importlib.metadata import version

    _loader()  # not installed: one sentence saying how to install it
    return version("espeakng-loader")


def _loader():  # -> the espeakng_loader module, or one sentence saying how to install it
    try:
        import espeakng_loader
    except ImportError as e:
        raise DataError(
            f"speech-digits is synthesized by eSpeak NG, which needs espeakng-loader ({e}); "
            "pip install 'genzoo[audio]'."
        ) from e
    return espeakng_loader


def _synthesize_here(utterances: list[Utterance]) -> list[np.ndarray]:
    """Synthesize in this process (the child's side of :func:`synthesize`): int16 arrays."""
    el = _loader()
    lib = ctypes.cdll.LoadLibrary(el.get_library_path())
    rate = lib.espeak_Initialize(_SYNCHRONOUS, 0, el.get_data_path().encode(), 0)
    if rate != ESPEAK_RATE:
        raise DataError(f"eSpeak NG did not start (espeak_Initialize returned {rate}).")
    chunks: list[np.ndarray] = []
    callback_type = ctypes.CFUNCTYPE(
        ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
    )

    def on_audio(wav, n, events):  # int SynthCallback(short *wav, int n, espeak_EVENT *events)
        if n > 0:
            chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0  # 0: continue synthesis

    callback = callback_type(on_audio)  # kept alive for the whole loop
    lib.espeak_SetSynthCallback(callback)

    def speak(u: Utterance) -> np.ndarray:
        if lib.espeak_SetVoiceByName(u.voice.encode()) != 0:
            raise DataError(f"eSpeak NG has no voice {u.voice!r}.")
        lib.espeak_SetParameter(_PITCH, u.pitch, 0)
        lib.espeak_SetParameter(_RANGE, u.pitch_range, 0)
        lib.espeak_SetParameter(_RATE, u.wpm, 0)
        lib.espeak_SetParameter(_VOLUME, 100, 0)
        text = u.text.encode()
        chunks.clear()
        lib.espeak_Synth(text, len(text) + 1, 0, 0, 0, _CHARS_UTF8 | _END_PAUSE, None, None)
        lib.espeak_Synchronize()
        return np.concatenate(chunks).astype(np.int16) if chunks else np.zeros(0, np.int16)

    if sys.platform == "win32":  # pragma: no cover - no fork: one state, in the list's order
        out = [speak(u) for u in utterances]
    else:  # each utterance in a fork of the freshly initialised library: order-independent
        out = [_in_fork(speak, u) for u in utterances]
    lib.espeak_Terminate()
    return out


# the child loads this file by its path: it needs neither torch nor the rest of genzoo.data
_CHILD = (
    "import importlib.util, sys\n"
    "spec = importlib.util.spec_from_file_location('_genzoo_espeak', sys.argv[1])\n"
    "mod = sys.modules['_genzoo_espeak'] = importlib.util.module_from_spec(spec)\n"
    "spec.loader.exec_module(mod)\n"
    "mod._child(sys.argv[2], sys.argv[3])\n"
)


def synthesize(utterances: list[Utterance]) -> list[np.ndarray]:
    """The waveforms (int16, 22,050 Hz) of ``utterances``, synthesized in a fresh child process so
    that they depend only on the list (see the module docstring)."""
    _loader()  # a missing install is one sentence here, not a child's traceback
    with tempfile.TemporaryDirectory() as tmp:
        spec, out = Path(tmp) / "utterances.json", Path(tmp) / "audio.npz"
        spec.write_text(json.dumps([asdict(u) for u in utterances]))
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])  # the folder that holds this genzoo
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
        res = subprocess.run(
            [sys.executable, "-c", _CHILD, __file__, str(spec), str(out)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if res.returncode != 0 or not out.exists():
            last = (res.stderr.strip().splitlines() or ["no output"])[-1]
            raise DataError(f"eSpeak NG synthesis failed: {last}")
        with np.load(out, allow_pickle=False) as z:
            return [z[f"a{i}"] for i in range(len(utterances))]


def _in_fork(speak, u: Utterance) -> np.ndarray:
    """``speak(u)`` in a forked copy of this process, so that no state carries over."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the fork: synthesize, send the samples, leave without cleanup
        code = 0
        try:
            data = speak(u).tobytes()
            with os.fdopen(write, "wb") as f:
                f.write(data)
        except BaseException:
            code = 1
        os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise DataError(f"eSpeak NG failed to say {u.text!r} in voice {u.voice!r}.")
    return np.frombuffer(data, dtype=np.int16).copy()


def _child(spec_path: str, out_path: str) -> None:
    """Entry point of the child process of :func:`synthesize`."""
    utterances = [Utterance(**d) for d in json.loads(Path(spec_path).read_text())]
    waves = _synthesize_here(utterances)
    np.savez(out_path, **{f"a{i}": w for i, w in enumerate(waves)})
