"""Start-up of the admin's commands against a bare `python -c "import sqlalchemy"` (issue 14).

    python benchmarks/startup.py              # 15 runs of each, on a fresh demo registry
    python benchmarks/startup.py --runs 30

Makes a demo registry (`mailbot demo`) in a temporary directory, then times each command as a whole process,
the way an admin starts it (the installed console scripts), with bytecode caching on (PYTHONDONTWRITEBYTECODE
removed from the environment: with it set, every start of an editable install recompiles the project), after
one warm-up run each. Prints the median, min and max of each, and its ratio to the median of the bare import.

`mailbot check` tries every connection the settings name. It is timed on the demo's configuration as it is, where
every probe is local: the configuration, the SQLite registry (schema, worker lease, last runs), and no mailbox or
SMTP server configured, which it reports as failures (exit status 1, accepted here) without connecting anywhere. So
the figure is its start-up and its own local work, not a server's latency.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = [
    ["registry", "status", "--json"],
    ["registry", "networks", "--json"],
    ["registry", "members", "skis", "--json"],
    ["registry", "--help"],
    ["mailbot", "--help"],
    ["mailbot", "check"],
]
# Commands whose exit status 1 is their answer on the demo's configuration (see above), not a failure.
EXPECTED_STATUS = {("mailbot", "check"): 1}


def run(command: list[str], cwd: Path, env: dict[str, str]) -> None:
    done = subprocess.run(command, cwd=cwd, env=env, check=False, capture_output=True)
    if done.returncode != EXPECTED_STATUS.get(tuple(command), 0):
        raise subprocess.CalledProcessError(done.returncode, command, done.stdout, done.stderr)


def timed(command: list[str], cwd: Path, env: dict[str, str], runs: int) -> list[float]:
    run(command, cwd, env)  # warm-up: caches, .pyc
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        run(command, cwd, env)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE" and not k.startswith("MAILBOT_")}
    work = Path(tempfile.mkdtemp(prefix="mailbot-startup-"))
    try:
        subprocess.run(["mailbot", "demo"], cwd=work, env=env, check=True, capture_output=True)
        base = timed([sys.executable, "-c", "import sqlalchemy"], work, env, args.runs)
        reference = statistics.median(base)
        print(f"{'command':<34} {'median':>8} {'min':>7} {'max':>7}  ratio to import sqlalchemy")
        label = 'python -c "import sqlalchemy"'
        print(f"{label:<34} {reference:>7.3f}s {min(base):>6.3f}s {max(base):>6.3f}s  1.00")
        for command in COMMANDS:
            times = timed(command, work, env, args.runs)
            median = statistics.median(times)
            print(f"{' '.join(command):<34} {median:>7.3f}s {min(times):>6.3f}s {max(times):>6.3f}s  "
                  f"{median / reference:.2f}")  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
