"""A benchmark script is run as a file (``python benchmarks/x.py``), which puts ``benchmarks/``
first on the import path: a script named like a standard-library module (``ssl.py``) would then
shadow that module for every other benchmark (torch imports ``ssl`` through its hub code)."""

import sys
from pathlib import Path

BENCH = Path(__file__).parents[2] / "benchmarks"


def test_no_benchmark_script_shadows_a_standard_library_module():
    names = {p.stem for p in BENCH.glob("*.py")}
    assert names, "no benchmark scripts found"
    assert not names & set(sys.stdlib_module_names), names & set(sys.stdlib_module_names)
