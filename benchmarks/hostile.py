"""A pass over the hostile corpus (issue 13): wall time, the slowest mail, and peak RSS of the process tree.

    python benchmarks/hostile.py

Starts a throwaway Dovecot with tests/servers.py, appends tests/hostile_corpus.py's mails to INBOX, runs
`mailbot poll --no-send --json` into a fresh SQLite registry, and samples every 50 ms the resident memory of the
whole process tree (the main process, the forkserver and the reader workers: /proc/<pid>/status VmRSS, summed).
The slowest mail is read from the log (the gap between one mail's record line and the previous one).
Target (issue 13): peak RSS of the tree under 400 MB; no mail longer than its budget (60 s).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

from hostile_corpus import hostile_mails  # noqa: E402
from servers import DovecotServer  # noqa: E402


def tree_rss_kib(root: int) -> int:
    """The summed VmRSS of `root` and all its descendants."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        pid, ppid = int(entry), int(fields.get("PPid", "0").strip() or 0)
        children.setdefault(ppid, []).append(pid)
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0])
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def main() -> None:
    mails = hostile_mails()
    with tempfile.TemporaryDirectory(prefix="mailbot-hostile-") as tmp:
        work = Path(tmp)
        dovecot = DovecotServer()
        dovecot.start()
        try:
            for _, raw in mails:
                dovecot.append(raw)
            env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_")}
            env.update(dovecot.imap_env())
            env.update(
                MAILBOT_DATABASE__URL=f"sqlite:///{work / 'registry.sqlite3'}",
                MAILBOT_SMTP__DIRECTORY=str(work / "out"),
            )
            peak = 0
            started = time.perf_counter()
            process = subprocess.Popen(
                ["mailbot", "poll", "--no-send", "--json"], env=env, cwd=work, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            done = threading.Event()

            def sample() -> None:
                nonlocal peak
                while not done.is_set():
                    peak = max(peak, tree_rss_kib(process.pid))
                    time.sleep(0.05)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            stdout, stderr = process.communicate(timeout=1800)
            seconds = time.perf_counter() - started
            done.set()
            sampler.join()
        finally:
            dovecot.close()
    if process.returncode != 0:
        raise SystemExit(f"mailbot poll failed:\n{stderr[-3000:]}")
    stamps = []
    for line in stderr.splitlines():
        match = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ mailbot\.intake: message-id=(\S*)", line)
        if match:
            stamps.append((datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f"), match.group(2)))
    gaps = [((b[0] - a[0]).total_seconds(), b[1]) for a, b in zip(stamps, stamps[1:], strict=False)]
    slowest = max(gaps, default=(0.0, None))
    report = json.loads(stdout)
    print(
        json.dumps(
            {
                "mails": len(mails),
                "recorded": report["new"],
                "review": report["review"],
                "wall_seconds": round(seconds, 2),
                "slowest_mail_seconds": round(slowest[0], 2),
                "slowest_mail": slowest[1],
                "peak_rss_tree_mib": round(peak / 1024, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
