"""Start-up of the admin's commands against a bare `python -c "import sqlalchemy"` (issue 14).

    python benchmarks/startup.py              # 15 runs of each, on a fresh demo registry
    python benchmarks/startup.py --runs 30

Makes a demo registry (`mailbot demo`) in a temporary directory, then times each command as a whole process,
the way an admin starts it (the installed console scripts), with bytecode caching on (PYTHONDONTWRITEBYTECODE
removed from the environment: with it set, every start of an editable install recompiles the project), after
one warm-up run each. Prints the median, min and max of each, and its ratio to the median of the bare import;
then the median CPU time (user + system) of each and its ratio, which a machine busy with other work disturbs less
than the wall-clock time.

`mailbot check` tries every connection the settings name. It is timed on the demo's configuration as it is, where
every probe is local: the configuration, the SQLite registry (schema, worker lease, last runs), and no mailbox or
SMTP server configured, which it reports as failures (exit status 1, accepted here) without connecting anywhere. So
the figure is its start-up and its own local work, not a server's latency.
"""

from __future__ import annotations

import argparse
import os
import resource
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


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], cwd: Path, env: dict[str, str], runs: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU seconds of each run."""
    run(command, cwd, env)  # warm-up: caches, .pyc
    times, cpu = [], []
    for _ in range(runs):
        cpu_before = _children_cpu()
        started = time.perf_counter()
        run(command, cwd, env)
        times.append(time.perf_counter() - started)
        cpu.append(_children_cpu() - cpu_before)
    return times, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE" and not k.startswith("MAILBOT_")}
    work = Path(tempfile.mkdtemp(prefix="mailbot-startup-"))
    try:
        subprocess.run(["mailbot", "demo"], cwd=work, env=env, check=True, capture_output=True)
        base, base_cpu = timed([sys.executable, "-c", "import sqlalchemy"], work, env, args.runs)
        reference, cpu_reference = statistics.median(base), statistics.median(base_cpu)
        print(f"{'command':<34} {'median':>8} {'min':>7} {'max':>7}  ratio   {'cpu':>7}  cpu ratio")
        label = 'python -c "import sqlalchemy"'
        print(f"{label:<34} {reference:>7.3f}s {min(base):>6.3f}s {max(base):>6.3f}s  1.00   "
              f"{cpu_reference:>6.3f}s  1.00")  # fmt: skip
        for command in COMMANDS:
            times, cpu = timed(command, work, env, args.runs)
            median = statistics.median(times)
            print(f"{' '.join(command):<34} {median:>7.3f}s {min(times):>6.3f}s {max(times):>6.3f}s  "
                  f"{median / reference:.2f}   {statistics.median(cpu):>6.3f}s  "
                  f"{statistics.median(cpu) / cpu_reference:.2f}")  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
