"""Runs: the Python API that the command line mirrors (above ``train`` and ``metrics``, below
``cli`` and ``compare``).

``train(model, data, ...)`` creates ``runs/<name>/`` with ``config.yaml``, ``checkpoints/``,
``metrics.jsonl``, ``samples/`` and ``events/``; ``load(run)`` rebuilds the model from the run's
config (safe YAML), its sub-runs and its latest checkpoint (safetensors) without touching the
data, and ``open_run(run)`` also gives the checkpoint step; ``sample``, ``evaluate`` and
``interpolate`` use a trained run. The multimodal commands are in :mod:`genzoo.runs.multimodal`,
image translation in :mod:`genzoo.runs.translate`.
"""

from genzoo.runs.evaluate import evaluate
from genzoo.runs.interpolate import interpolate
from genzoo.runs.load import LoadedRun, load, open_run
from genzoo.runs.represent import embed, probe
from genzoo.runs.sample import sample
from genzoo.runs.train import train

__all__ = [
    "LoadedRun",
    "embed",
    "evaluate",
    "interpolate",
    "load",
    "open_run",
    "probe",
    "sample",
    "train",
]
