"""`genzoo list` descriptions are whole first sentences; `--help` shows the defaults."""

import pytest

from genzoo.cli import main
from genzoo.models import MODELS
from genzoo.runs.catalog import catalog, first_sentence


@pytest.mark.parametrize(
    ("doc", "want"),
    [
        (
            "A model (Vincent et al. 2008,\n    2010). More text.",
            "A model (Vincent et al. 2008, 2010).",
        ),
        (
            "Heun, EDM Eq. 5 with\n``s``; then more.\n\nOther paragraph.",
            "Heun, EDM Eq. 5 with `s`; then more.",
        ),
        (
            "Annealed Langevin (arXiv:1907.05600):\n    at each level.",
            "Annealed Langevin (arXiv:1907.05600): at each level.",
        ),
        ("No full stop at all", "No full stop at all"),
    ],
)
def test_first_sentence(doc, want):
    assert first_sentence(doc) == want


def test_every_model_description_is_a_whole_sentence():
    lines = {ln.split()[0]: ln for ln in catalog("models")[1:]}
    for name in MODELS.names():
        desc = lines[name].split(maxsplit=4)[4]
        para = " ".join(MODELS.get(name).__doc__.strip().split("\n\n")[0].split())
        assert para.replace("``", "`").startswith(desc), name
        assert desc.endswith((".", "?", "!")), (name, desc)


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        ("sample", ["(default: 64)", "(default: 0)"]),
        ("compare", ["(default: runs/compare)", "(default: 1000)"]),
        ("list", ["(default: all)"]),
    ],
)
def test_help_shows_defaults(capsys, command, shown):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for s in shown:
        assert s in text, s
    assert "(default: None)" not in text and "(default: [])" not in text
