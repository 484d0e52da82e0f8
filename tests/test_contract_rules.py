"""Rules of the model contract (docs/architecture.md) that a reading of the source can check."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "genzoo"
MODEL_FILES = sorted((ROOT / "models").rglob("*.py"))
FILE_IO = re.compile(
    r"\bopen\(|\.read_text\(|\.read_bytes\(|\bload_file\(|\bsafe_open\(|\btorch\.load\("
    r"|genzoo\.core\.(runs|io)\b|\bread_run_config\b|\bfind_checkpoint\b"
)


@pytest.mark.parametrize("path", MODEL_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_model_opens_a_file_or_reads_a_run(path: Path) -> None:
    """Models are built from a config, the data's info and loaded parts (BuiltOnRuns): the runs
    layer reads run directories and checkpoints, never a model."""
    hits = [
        f"{n}: {line.strip()}"
        for n, line in enumerate(path.read_text().splitlines(), start=1)
        if FILE_IO.search(line)
    ]
    assert not hits, hits


def test_no_consumer_probes_a_model_for_attributes() -> None:
    """Capabilities are declared types tested with isinstance (genzoo/core/protocol.py)."""
    probe = re.compile(r"\b(hasattr|getattr)\((self\.)?model\b")
    hits = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in sorted(ROOT.rglob("*.py"))
        if p.name != "protocol.py"
        for n, line in enumerate(p.read_text().splitlines(), start=1)
        if probe.search(line)
    ]
    assert not hits, hits


def test_the_base_model_declares_only_the_contract() -> None:
    """The base keeps loss, param_groups, group_settings and eval_metrics; sampling, likelihoods,
    latents, prompts, closed-form fits and translation are capabilities."""
    from genzoo.core.protocol import GenerativeModel

    own = {
        k
        for k, v in vars(GenerativeModel).items()
        if callable(v) and not isinstance(v, type) and not k.startswith("_")
    }
    assert own == {"loss", "param_groups", "group_settings", "eval_metrics"}
