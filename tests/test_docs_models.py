"""Every model built on other runs (ldm, vqvae-prior, t2i-*, the post-trained LMs) has a documented
`genzoo train` (or `genzoo finetune`) command in docs/, and `genzoo list` describes it in a whole
sentence."""

import re
from pathlib import Path

import pytest

from genzoo.core.protocol import BuiltOnRuns
from genzoo.models import MODELS
from genzoo.runs.catalog import catalog

DOCS = "\n".join(p.read_text() for p in (Path(__file__).parents[1] / "docs").glob("*.md"))
REQUIRED = {"ldm": "autoencoder_run", "vqvae-prior": "vqvae_run", "t2i-vq": "vqvae_run"}
BUILT_ON_RUNS = [n for n in MODELS.names() if issubclass(MODELS.get(n), BuiltOnRuns)]


@pytest.mark.parametrize("name", BUILT_ON_RUNS)
def test_models_built_on_runs_are_documented(name):
    cls = MODELS.get(name)
    commands = re.findall(rf"^genzoo train {re.escape(name)} .*$", DOCS, re.M)
    # post-trained language models are made by `genzoo finetune BASE --method NAME`
    commands += re.findall(rf"^genzoo finetune .*--method +{re.escape(name)}\b.*$", DOCS, re.M)
    # ... and DreamBooth by `genzoo finetune BASE --dreambooth DIR`
    commands += re.findall(rf"^genzoo finetune .*--{re.escape(name)}\b.*$", DOCS, re.M)
    assert commands, f"no `genzoo train {name}` (or `genzoo finetune --method {name}`) in docs/"
    if name in REQUIRED:  # a run the model cannot do without: the docs show how to name it
        field = REQUIRED[name]
        assert field in {s.run_field for s in cls.sub_runs}
        assert any(f"{field}=" in c for c in commands), (name, field)
    line = next(ln for ln in catalog("models") if ln.split()[0] == name)
    assert line.rstrip().endswith(".")
