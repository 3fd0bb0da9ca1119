"""Where a first intake pass spends its time: cProfile of one `jobs.poll` over N benchmark mails (issue 14).

    python benchmarks/profile_intake.py                      # 1,000 mails, top 30 by own time and by cumulative
    python benchmarks/profile_intake.py --count 300 --top 50
    python benchmarks/profile_intake.py --dump /tmp/intake.prof   # for snakeviz / pstats afterwards
    python benchmarks/profile_intake.py --main-only               # what the main process does beside the readers

The mails are those of benchmarks/intake_imap.py (by default small Swedish mails, a fifth with a one-page PDF;
`--mix issue` for issue 14's), written to a
throwaway Maildir so that no server is needed; the pass records them into a fresh SQLite registry with
`send=False`. The reader runs in this process (mailbot.reader.InProcessReader instead of the budgeted worker
processes), so one profile holds everything a mail costs: MIME parsing, understanding, PDF text, recording.
The Maildir source reads files instead of IMAP: the fetch itself is not in this profile (intake_imap.py times it).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import mailbox
import os
import pstats
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from intake_imap import make_issue_mail, make_mail, member_docx, minutes_pdf, small_pdf  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--dump", type=Path, help="write the raw profile here")
    parser.add_argument("--main-only", action="store_true",
                        help="the real reader's worker processes read the mails: the profile is the main process's")
    parser.add_argument("--mix", choices=("small", "issue"), default="small",
                        help="intake_imap.py's small mix, or issue 14's (Outlook text+HTML, PDF minutes, DOCX lists)")
    args = parser.parse_args()

    import logging

    logging.getLogger("mailbot").setLevel(logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="mailbot-profile-"))
    box = mailbox.Maildir(work / "Maildir", create=True)
    pdf = small_pdf()
    files = (minutes_pdf(), member_docx()) if args.mix == "issue" else None
    for number in range(args.count):
        box.add(make_issue_mail(number, files, "profile") if files else make_mail(number, pdf, "profile"))
    for key in list(os.environ):
        if key.startswith("MAILBOT_"):
            del os.environ[key]
    os.environ.update(
        MAILBOT_MAILDIR=str(work / "Maildir"),
        MAILBOT_DATABASE__URL=f"sqlite:///{work / 'registry.sqlite3'}",
        MAILBOT_SMTP__DIRECTORY=str(work / "outbox"),
    )
    from mailbot import intake, jobs
    from mailbot.reader import InProcessReader
    from registry.runtime import Runtime

    if not args.main_only:
        intake.Intake.reader = lambda self: InProcessReader()  # type: ignore[method-assign]  # one process, one profile
    rt = Runtime(config_path=None)
    rt.engine(create=True)
    # Warm the imports and the caches the first mail would pay for (not what a pass of N mails costs).
    import mailbot.understand.decode  # noqa: F401
    import mailbot.understand.pipeline  # noqa: F401

    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    result = jobs.poll(rt, datetime.now(UTC), send=False)
    profiler.disable()
    seconds = time.perf_counter() - started
    report = result.report
    print(f"{args.count} mails: {seconds:.2f} s under cProfile ({report.new} new, {report.registered} registered, "
          f"{report.review} review, {report.ignored} ignored); load {os.getloadavg()}")  # fmt: skip
    if args.dump:
        profiler.dump_stats(args.dump)
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order).print_stats(args.top)
        text = out.getvalue()
        print(text[text.index("   ncalls") :] if "   ncalls" in text else text)
    import shutil

    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
