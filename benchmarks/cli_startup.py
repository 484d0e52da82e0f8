"""Start-up time of the command line: ``genzoo --help`` and a one-line argument error, beside
``python -c "import torch"`` (what every command that does real work pays once).

    python benchmarks/cli_startup.py [--repeats 5]

Each command runs once to warm the file cache, then ``--repeats`` times; the table gives the
median wall time of a fresh process.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "genzoo --help": [sys.executable, "-m", "genzoo", "--help"],
    "genzoo train (no model: error)": [sys.executable, "-m", "genzoo", "train"],
    "genzoo train ddpm --steps 0 (error)": [
        sys.executable,
        "-m",
        "genzoo",
        "train",
        "ddpm",
        "--data",
        "digits",
        "--steps",
        "0",
    ],
    "python -c 'import torch' (peer)": [sys.executable, "-c", "import torch"],
}


def wall(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, capture_output=True, check=False)
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    print(f"| command | median of {args.repeats} (s) | min (s) |")
    print("|---|---:|---:|")
    for name, cmd in COMMANDS.items():
        wall(cmd)  # warm-up
        times = [wall(cmd) for _ in range(args.repeats)]
        print(f"| {name} | {statistics.median(times):.3f} | {min(times):.3f} |")


if __name__ == "__main__":
    main()
