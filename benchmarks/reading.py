"""What reading one mail costs: parse_mail + understand over the test corpus, in-process, in ms per mail (issue 14).

    python benchmarks/reading.py                    # corpus mails, 5 rounds: ms/mail for parse and understand
    python benchmarks/reading.py --rounds 10
    python benchmarks/reading.py --profile --top 30 # cProfile of one round (by own time and cumulative)
    python benchmarks/reading.py --results /tmp/before.json --all   # every result, for a before/after diff
    python benchmarks/reading.py --compare /tmp/before.json --all   # diff the results now against that file
    python benchmarks/reading.py --jobs /tmp/jobs.pickle            # collect the jobs once, reuse them after
    python benchmarks/reading.py --jobs /tmp/jobs.pickle --intake 1000   # benchmarks/intake_imap.py's mails instead
    python benchmarks/reading.py --jobs /tmp/jobs.pickle --intake 1000 --mix issue   # issue 14's mix, ms per kind

The jobs are those the intake hands its reader: every case of tests/fixtures/corpus (with its `preceded_by` mails)
is run once through tests/corpus_runner.py with a reader that keeps each ReadJob (raw bytes, the Context the
registry gave at that point, the arrival time). Those jobs are then read again by `parse_mail` and `understand`
in this process, timed per phase in CPU time (time.process_time, less disturbed by other load than wall time); the
figure is the median round. Caches keyed on values a mail carries (decoded headers, folded text) are emptied before
each round, so a round is what a pass pays for mails it has not seen.

`--intake N` times N mails of benchmarks/intake_imap.py instead (small Swedish questions without a network's
name, a fifth with a one-page PDF: plainer than the corpus, whose mails are mostly lists, minutes and dates), read
with the Context of the first corpus job; with `--mix issue`, issue 14's mix (Outlook text and HTML, every tenth
with a four-page minutes PDF, every tenth from the fifth with a member list DOCX), and the figures per kind.

`--all` adds every other .eml under tests/ and tests/hostile_corpus.py's mails (bombs included) for the result
file and the comparison, read with the Context of the first corpus job; they are not timed. The comparison prints
each mail whose parsed mail or understanding differs, field by field; zero differences is the bar of a change
meant to make reading cheaper.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import enum
import hashlib
import io
import json
import logging
import pickle
import pstats
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def collect_jobs() -> list[tuple[str, Any]]:
    """(name, ReadJob) of every mail the corpus cases hand the reader, in order."""
    import corpus_runner

    from mailbot import intake
    from mailbot.reader import InProcessReader

    jobs: list[tuple[str, Any]] = []

    class Keeping(InProcessReader):
        def read_many(self, items, settle=None):  # type: ignore[no-untyped-def]
            def kept():  # type: ignore[no-untyped-def]
                for tag, job in items:
                    if job is not None:
                        jobs.append((current, job))
                    yield tag, job

            return super().read_many(kept(), settle)

    intake.Intake.reader = lambda self: Keeping()  # type: ignore[method-assign]
    current = ""
    with tempfile.TemporaryDirectory(prefix="mailbot-reading-") as work:
        for path in corpus_runner.case_paths():
            current = path.stem
            corpus_runner.run_case(path, Path(work))
    return jobs


def extra_mails() -> list[tuple[str, bytes]]:
    """Every .eml under tests/ outside the corpus, and the hostile corpus."""
    import hostile_corpus

    corpus = ROOT / "tests" / "fixtures" / "corpus"
    mails = [
        (str(path.relative_to(ROOT)), path.read_bytes())
        for path in sorted((ROOT / "tests").rglob("*.eml"))
        if corpus not in path.parents
    ]
    return mails + [(f"hostile/{name}", raw) for name, raw in hostile_corpus.hostile_mails()]


def intake_jobs(count: int, like: Any, mix: str = "small") -> list[tuple[str, Any]]:
    """benchmarks/intake_imap.py's mails as reader jobs with the Context of `like`, each read an hour after its Date;
    named by kind (plain, pdf, docx) for the breakdown."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from intake_imap import make_issue_mail, make_mail, member_docx, minutes_pdf, small_pdf

    first = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
    if mix == "issue":
        files = (minutes_pdf(), member_docx())
        kinds = {0: "pdf", 5: "docx"}
        made = [(kinds.get(n % 10, "plain"), make_issue_mail(n, files, "reading")) for n in range(count)]
    else:
        pdf = small_pdf()
        made = [("pdf" if n % 5 == 0 else "plain", make_mail(n, pdf, "reading")) for n in range(count)]
    return [
        (kind, dataclasses.replace(like, raw=raw, arrival=first + timedelta(minutes=3 * n)))
        for n, (kind, raw) in enumerate(made)
    ]


def clear_caches() -> None:
    from mailbot.understand import classify, decode
    from registry import config

    for cache in (
        getattr(decode, "_PARSED_HEADERS", None),
        getattr(decode, "_FETCHED", None),
        getattr(decode, "_PARAMETER_LISTS", None),
        getattr(decode, "_DECODED_HEADERS", None),
    ):
        if cache is not None:
            cache.clear()
    for function in (config.fold, getattr(classify, "_word_pattern", None), getattr(classify, "_folded_words", None)):
        if function is not None and hasattr(function, "cache_clear"):
            function.cache_clear()


def canonical(value: Any) -> Any:
    """A JSON-able form of a parsed mail or an understanding: bytes as their length and digest."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes sha256 {hashlib.sha256(value).hexdigest()[:16]}>"
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(key): canonical(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [canonical(item) for item in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    if isinstance(value, datetime | date | clock_time | timedelta):
        return repr(value)
    return value


def read_once(raw: bytes, context: Any, arrival: datetime) -> dict[str, Any]:
    from mailbot.understand.decode import parse_mail
    from mailbot.understand.pipeline import understand

    parsed = parse_mail(raw)
    try:
        understanding: Any = canonical(understand(parsed, context, arrival))
    except Exception as error:  # noqa: BLE001  (a result like any other: it must not change either)
        understanding = f"raised {error!r}"
    return {"parsed": canonical(parsed), "understanding": understanding}


def results(jobs: list[tuple[str, Any]], extra: list[tuple[str, bytes]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for number, (name, job) in enumerate(jobs):
        out[f"{number:04d} {name}"] = read_once(job.raw, job.context, job.arrival)
    if extra:
        context, arrival = jobs[0][1].context, jobs[0][1].arrival
        for name, raw in extra:
            out[f"extra {name}"] = read_once(raw, context, arrival)
    return out


def differences(before: Any, after: Any, path: str = "") -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        found = []
        for key in sorted(set(before) | set(after)):
            if key not in after or key not in before:
                found.append(f"{path}.{key}: {'missing now' if key not in after else 'new'}")
            else:
                found += differences(before[key], after[key], f"{path}.{key}")
        return found
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [
            line
            for index, pair in enumerate(zip(before, after, strict=True))
            for line in differences(*pair, f"{path}[{index}]")
        ]
    if before != after:
        return [
            f"{path}: {json.dumps(before, ensure_ascii=False)[:300]}  ->  {json.dumps(after, ensure_ascii=False)[:300]}"
        ]
    return []


def one_round(jobs: list[tuple[str, Any]], by_kind: dict[str, list[float]] | None = None) -> tuple[float, float]:
    from mailbot.understand.decode import parse_mail
    from mailbot.understand.pipeline import understand

    clear_caches()
    parse_seconds = understand_seconds = 0.0
    clock = time.process_time  # CPU time of this process: what a mail costs, less disturbed by other load
    for kind, job in jobs:
        started = clock()
        parsed = parse_mail(job.raw)
        middle = clock()
        understand(parsed, job.context, job.arrival)
        ended = clock()
        parse_seconds += middle - started
        understand_seconds += ended - middle
        if by_kind is not None:
            totals = by_kind.setdefault(kind, [0.0, 0.0, 0.0])
            totals[0] += middle - started
            totals[1] += ended - middle
            totals[2] += 1
    return parse_seconds, understand_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="cProfile one round instead of timing")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--results", type=Path, help="write every mail's parsed mail and understanding here (JSON)")
    parser.add_argument("--compare", type=Path, help="diff every result against this --results file")
    parser.add_argument("--jobs", type=Path, help="pickle of the jobs: read if it exists, else written")
    parser.add_argument("--intake", type=int, metavar="N", help="time N mails of benchmarks/intake_imap.py instead")
    parser.add_argument("--mix", choices=("small", "issue"), default="small",
                        help="with --intake: the small mix, or issue 14's (Outlook text+HTML, PDF minutes, DOCX lists)")
    parser.add_argument("--all", action="store_true", help="results and comparison also over the other test mails")
    args = parser.parse_args()

    logging.getLogger("mailbot").setLevel(logging.CRITICAL)
    logging.getLogger("registry").setLevel(logging.CRITICAL)
    started = time.perf_counter()
    if args.jobs and args.jobs.exists():
        jobs, extra = pickle.loads(args.jobs.read_bytes())
    else:
        # The hostile corpus generates some files at run time (zip time stamps): kept with the jobs, the same
        # bytes are compared.
        jobs, extra = collect_jobs(), extra_mails()
        if args.jobs:
            args.jobs.write_bytes(pickle.dumps((jobs, extra)))
    print(f"{len(jobs)} reader jobs from {len({name for name, _ in jobs})} corpus cases "
          f"({'read' if args.jobs and args.jobs.exists() else 'collected'} in {time.perf_counter() - started:.1f} s)")  # fmt: skip

    if args.intake:
        jobs = intake_jobs(args.intake, jobs[0][1], args.mix)

    if args.results or args.compare:
        now = results(jobs, extra if args.all else [])
        if args.results:
            args.results.write_text(json.dumps(now, ensure_ascii=False, indent=1, sort_keys=True))
            print(f"{len(now)} results written to {args.results}")
        if args.compare:
            before = json.loads(args.compare.read_text())
            now = json.loads(json.dumps(now, ensure_ascii=False))  # tuples as lists, as in the file
            changed = 0
            for key in sorted(set(before) | set(now)):
                lines = differences(before.get(key), now.get(key))
                if lines:
                    changed += 1
                    print(f"--- {key}")
                    print("\n".join(f"    {line}" for line in lines[:20]))
            print(f"{changed} of {len(now)} mails differ from {args.compare}")
        return

    if args.profile:
        one_round(jobs)  # warm the imports and the compiled patterns
        profiler = cProfile.Profile()
        profiler.enable()
        one_round(jobs)
        profiler.disable()
        for order in ("tottime", "cumulative"):
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order).print_stats(args.top)
            text = out.getvalue()
            print(text[text.index("   ncalls") :] if "   ncalls" in text else text)
        return

    one_round(jobs)  # warm-up
    rounds = [one_round(jobs) for _ in range(args.rounds)]
    count = len(jobs)
    parse_ms = statistics.median(r[0] for r in rounds) * 1000 / count
    understand_ms = statistics.median(r[1] for r in rounds) * 1000 / count
    total_ms = statistics.median(r[0] + r[1] for r in rounds) * 1000 / count
    print(f"{count} mails, median of {args.rounds} rounds, CPU time: parse {parse_ms:.3f} ms/mail, "
          f"understand {understand_ms:.3f} ms/mail, together {total_ms:.3f} ms/mail")  # fmt: skip
    if args.intake:
        by_kind: dict[str, list[float]] = {}
        one_round(jobs, by_kind)
        for kind, (parse_s, understand_s, n) in sorted(by_kind.items()):
            print(f"  {kind:6} {int(n):6} mails: parse {parse_s * 1000 / n:.3f} ms/mail, "
                  f"understand {understand_s * 1000 / n:.3f} ms/mail")  # fmt: skip


if __name__ == "__main__":
    main()
