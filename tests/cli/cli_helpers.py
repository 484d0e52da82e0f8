"""Helpers of the command-line tests: run `genzoo ...` in-process, check a one-sentence error."""

from genzoo.cli import main


def run_cli(capsys, *args):
    """``main(args)`` (paths and numbers as strings) -> (exit code, stdout, stderr)."""
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def one_error(code, err, *needles):
    """Exit status 2 and one line ``genzoo: error: ...`` holding every needle."""
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("genzoo: error: "), err
    for n in needles:
        assert n in lines[0], (n, lines[0])
