"""Field-level precision and recall of the understanding over the test corpus (tests/fixtures/corpus).

Runs every case exactly as tests/test_corpus.py does (fresh registry, baseline, preceded_by, the mail) and
compares what was recorded with the case's expectation, field by field:

- true positive: recorded and equal to the expectation;
- false positive: recorded but wrong or not expected (a wrong fact);
- false negative: expected but not recorded (a wrong value counts as both FP and FN).

Fields: network, kind (each kind of a mail), status, members (each member row of a registered list), meeting
(each meeting the mail creates or changes: date, start, place when the case gives it, status), minutes date, and
attendance (each municipality present); "facts" adds up the four the registry records (members, meeting,
minutes date, attendance): a false positive there is a wrong fact. A meeting recorded right but without the
place the mail gives counts as a fact missing, not a wrong one. Figures are per author group ("authors": the
code's authors, tests/fixtures/corpus/*.eml; "helpers": written blind, tests/fixtures/corpus/blind/) and class
(the case's "class", else read off its kinds), and with --by-kind per expected kind of mail.

    python benchmarks/accuracy.py [--json] [--by-kind] [--only blind/]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from corpus_runner import CaseResult, author_group, case_class, case_paths, run_case  # noqa: E402

FIELDS = ("network", "kind", "status", "members", "meeting", "minutes_date", "attendance")
FACTS = ("members", "meeting", "minutes_date", "attendance")  # what the registry records: a FP here is a wrong fact
Counts = dict[str, list[int]]  # field -> [tp, fp, fn]


def _add(counts: Counts, name: str, tp: int = 0, fp: int = 0, fn: int = 0) -> None:
    entry = counts.setdefault(name, [0, 0, 0])
    entry[0] += tp
    entry[1] += fp
    entry[2] += fn


def _compare_sets(counts: Counts, name: str, expected: set[Any], recorded: set[Any]) -> None:
    _add(counts, name, len(expected & recorded), len(recorded - expected), len(expected - recorded))


def _compare_value(counts: Counts, name: str, expected: Any, recorded: Any) -> None:
    """One value that may be absent (None): equal -> TP; recorded and different -> FP; expected and missing or
    different -> FN."""
    if expected is not None and recorded == expected:
        _add(counts, name, tp=1)
        return
    _add(counts, name, fp=int(recorded is not None), fn=int(expected is not None))


def _meeting_key(meeting: dict[str, Any], with_place: bool) -> tuple[Any, ...]:
    place = (meeting.get("place") or "").casefold() if with_place else None
    return (meeting["date"], meeting.get("start"), place, meeting["status"])


def score(result: CaseResult) -> Counts:
    expected = result.expected
    counts: Counts = {}
    _add(counts, "status", *((1, 0, 0) if result.status == expected["status"] else (0, 1, 1)))
    _compare_value(counts, "network", expected["network"], result.network)
    _compare_sets(counts, "kind", set(expected["kinds"]), set(result.kinds))

    member = lambda m: (m["name"], m["email"], m["municipality"], m["role"])  # noqa: E731
    recorded_members = {member(m) for m in result.members or []} if result.member_list_recorded else set()
    if result.member_list_recorded and result.members is None:
        recorded_members = {("<list recorded>",)}
    _compare_sets(counts, "members", {member(m) for m in expected.get("members", [])}, recorded_members)

    expected_meetings = expected.get("meetings", [])
    with_place = {m["date"]: "place" in m for m in expected_meetings}
    recorded = {_meeting_key(m, with_place.get(m["date"], False)) for m in result.touched_meetings}
    # A meeting expected cancelled that the registry has no row for at all (an invitation moved it to its new
    # date) is just as gone: it counts as recorded.
    dates_on_file = {m["date"] for m in result.meetings}
    recorded |= {
        _meeting_key(m, with_place[m["date"]])
        for m in expected_meetings
        if m["status"] == "cancelled" and m["date"] not in dates_on_file
    }
    expected_keys = {_meeting_key(m, with_place[m["date"]]) for m in expected_meetings}
    # A meeting recorded right but without the place the mail gives is a fact missing (FN), not a wrong one (FP).
    placeless = {key for key in recorded - expected_keys if key[2] == "" and (key[0], key[1], key[3]) in
                 {(e[0], e[1], e[3]) for e in expected_keys}}  # fmt: skip
    _compare_sets(counts, "meeting", expected_keys, recorded - placeless)
    # Meetings in other networks: those of a mail's other headed sections, or a wrong fact in a network not its own.
    other_expected = expected.get("other_networks", {})
    for other in set(other_expected) | set(result.other_meetings):
        places = {m["date"]: "place" in m for m in other_expected.get(other, [])}
        _compare_sets(
            counts,
            "meeting",
            {(other, *_meeting_key(m, places[m["date"]])) for m in other_expected.get(other, [])},
            {(other, *_meeting_key(m, places.get(m["date"], False))) for m in result.other_meetings.get(other, [])},
        )

    expected_minutes = expected.get("minutes")
    _compare_sets(
        counts,
        "minutes_date",
        {expected_minutes["meeting_date"]} if expected_minutes else set(),
        {m["meeting_date"] for m in result.minutes},
    )
    present_expected = set(expected_minutes.get("municipalities_present", [])) if expected_minutes else set()
    present_recorded = {town for m in result.minutes for town in m["municipalities_present"]}
    _compare_sets(counts, "attendance", present_expected, present_recorded)
    return counts


def _ratio(numerator: int, denominator: int) -> str:
    return f"{100 * numerator / denominator:6.1f}%" if denominator else "     – "


def _table(title: str, by_group: dict[str, Counts]) -> None:
    print(title)
    print(f"{'group':<40}{'field':<14}{'TP':>5}{'FP':>5}{'FN':>5}{'precision':>11}{'recall':>9}")
    for group in sorted(by_group):
        for name in FIELDS:
            tp, fp, fn = by_group[group].get(name, [0, 0, 0])
            if tp + fp + fn == 0:
                continue
            print(f"{group:<40}{name:<14}{tp:>5}{fp:>5}{fn:>5}{_ratio(tp, tp + fp):>11}{_ratio(tp, tp + fn):>9}")
        tp, fp, fn = (sum(v[i] for k, v in by_group[group].items() if k in FACTS) for i in range(3))
        print(f"{group:<40}{'facts':<14}{tp:>5}{fp:>5}{fn:>5}{_ratio(tp, tp + fp):>11}{_ratio(tp, tp + fn):>9}")
        print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--by-kind", action="store_true", help="also print the figures per expected kind")
    parser.add_argument("--only", default="", help="only the cases whose path contains this text (e.g. blind/)")
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)  # the intake logs every mail; pypdf warns about broken files
    started = time.monotonic()
    by_kind: dict[str, Counts] = defaultdict(dict)
    by_class: dict[str, Counts] = defaultdict(dict)  # "helpers / period", "authors / minutes", "helpers / all"
    failures: list[str] = []
    cases = case_paths() if not args.only else [p for p in case_paths() if args.only in str(p)]
    with tempfile.TemporaryDirectory(prefix="mailbot-accuracy-") as tmp:
        for path in cases:
            case_dir = Path(tmp) / path.stem
            case_dir.mkdir()
            result = run_case(path, case_dir)
            counts = score(result)
            if any(fp or fn for fp_fn in counts.values() for fp, fn in [fp_fn[1:]]):
                failures.append(path.stem)
            group = author_group(result.expected)
            for name, (tp, fp, fn) in counts.items():
                for key in [*result.expected["kinds"], "overall"]:
                    _add(by_kind[key], name, tp, fp, fn)
                for key in (f"{group} / {case_class(result.expected)}", f"{group} / all"):
                    _add(by_class[key], name, tp, fp, fn)
    if args.json:
        print(json.dumps({"by_kind": {k: {f: dict(zip(("tp", "fp", "fn"), v, strict=True)) for f, v in c.items()}
                                      for k, c in by_kind.items()},
                          "by_class": {k: {f: dict(zip(("tp", "fp", "fn"), v, strict=True)) for f, v in c.items()}
                                       for k, c in by_class.items()},
                          "failures": failures}, indent=2))  # fmt: skip
        return 0
    print(f"Corpus: {len(cases)} cases, {time.monotonic() - started:.1f} s; cases with any FP/FN: "
          f"{', '.join(failures) or 'none'}\n")  # fmt: skip
    _table("By author group and class (helpers: written blind, see tests/fixtures/corpus/blind/README.md)", by_class)
    if args.by_kind:
        _table("By expected kind of mail", by_kind)
    return 0


if __name__ == "__main__":
    sys.exit(main())
