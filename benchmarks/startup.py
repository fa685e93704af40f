"""Start-up time of every console script: the wall time of `<script> --help`, median of several runs.

    python benchmarks/startup.py [--repeats 5] [--goal 1.5]

The scripts are those of pyproject.toml's [project.scripts], run from the venv this Python belongs to. Heavy
libraries (torch, Lightning, MLflow) must be imported inside the functions that need them, so `--help` stays
fast; a script over the goal names itself. Exit status 1 when any script is over the goal.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def console_scripts() -> list[str]:
    with open(REPO / "pyproject.toml", "rb") as handle:
        return sorted(tomllib.load(handle)["project"]["scripts"])


def help_seconds(script: str, repeats: int) -> list[float]:
    path = Path(sys.executable).parent / script
    if not path.exists():
        raise SystemExit(f"{path} is missing: install the project into this venv (make setup)")
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        proc = subprocess.run([str(path), "--help"], capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit(f"{script} --help failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--goal", type=float, default=1.5, help="seconds per `--help`")
    args = parser.parse_args()
    help_seconds(console_scripts()[0], 1)  # warm the file cache once, so the first script is not penalised
    print(f"| script | median s | min s | max s | under {args.goal} s |\n|---|---|---|---|---|")
    over = []
    for script in console_scripts():
        times = help_seconds(script, args.repeats)
        median = statistics.median(times)
        if median > args.goal:
            over.append(script)
        print(f"| {script} | {median:.2f} | {min(times):.2f} | {max(times):.2f} | {'yes' if median <= args.goal else 'NO'} |")
    print(f"\n{len(console_scripts()) - len(over)} of {len(console_scripts())} scripts start in under {args.goal} s"
          + (f"; over: {', '.join(over)}" if over else ""))
    sys.exit(1 if over else 0)


if __name__ == "__main__":
    main()
