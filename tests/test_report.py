"""The yearly report (registry/report.py, `registry report`, mailbot/yearly_report.py): its figures, its page as
a person sees it in headless Chromium (screenshot kept in the test artefacts), its PDF and its January mail."""

from __future__ import annotations

import email
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from email import policy
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader
from sqlalchemy import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from mailbot.outbox import message_of
from mailbot.yearly_report import queue_yearly_reports, queued_reports
from registry import record
from registry.cli import app
from registry.config import Registry, load_registry
from registry.db import open_registry
from registry.domain import MeetingStatus, Role
from registry.facts import DeliverableFact, MeetingFact, MemberFact, MemberListFact, MinutesFact, NetworkFacts
from registry.models import InboundMail
from registry.paths import config_dir
from registry.queries import members_in_force, network_facts
from registry.report import (
    OTHER_MEMBERS,
    ReportYearError,
    Verdict,
    build_report,
    facts_known_on,
    gather_report,
    render_report,
    report_dates,
)
from registry.runtime import Runtime

TZ = ZoneInfo("Europe/Stockholm")
REPO = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry(config_dir())


def artifacts_dir() -> Path:
    directory = Path(os.environ.get("MAILBOT_TEST_ARTIFACTS") or REPO / "artifacts")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


# --- the pure builder -------------------------------------------------------------------------------


def _meeting(day: date, status: MeetingStatus = MeetingStatus.PLANNED) -> MeetingFact:
    return MeetingFact(date=day, status=status, place="Stadshuset, Hjo")


def _grundskola_facts() -> NetworkFacts:
    """Rektorer i grundskolan (minimum 4) in 2025: three meetings held, one cancelled, two minutes."""
    members = (
        MemberFact("Anna", "anna@skovde.se", "Skövde", Role.CHAIR),
        MemberFact("Bo", "bo@skovde.se", "Skövde", Role.MEMBER),
        MemberFact("Cia", "cia@hjo.se", "Hjo", Role.SECRETARY),
        MemberFact("Dan", "dan@skaraborg.se", None, Role.MEMBER),
    )
    return NetworkFacts(
        member_lists=(MemberListFact(date(2025, 1, 10), date(2025, 1, 10), members),),
        meetings=(
            _meeting(date(2025, 3, 14)),
            _meeting(date(2025, 5, 9)),
            _meeting(date(2025, 6, 5), MeetingStatus.CANCELLED),
            _meeting(date(2025, 9, 12)),
        ),
        minutes=(
            MinutesFact(date(2025, 3, 14), date(2025, 3, 19)),
            MinutesFact(date(2025, 3, 14), date(2025, 3, 25)),  # a corrected version: the first one counts
            MinutesFact(date(2025, 5, 9), date(2025, 6, 2)),
        ),
    )


def _attendance() -> dict[date, frozenset[str]]:
    return {date(2025, 3, 14): frozenset({"Skövde", "Hjo"}), date(2025, 5, 9): frozenset({"Skövde"})}


def test_a_finished_year_is_judged_on_31_december_with_what_came_in_until_today() -> None:
    assert report_dates(2025, date(2026, 1, 15)) == (date(2025, 12, 31), date(2026, 1, 15))
    assert report_dates(2025, date(2025, 11, 21)) == (date(2025, 11, 21), date(2025, 11, 21))
    with pytest.raises(ReportYearError):
        report_dates(2026, date(2025, 12, 31))


def test_too_few_meetings_in_a_finished_year_is_not_met_with_the_count_as_reason(registry: Registry) -> None:
    network = registry.network("grundskola")
    report = build_report(2025, date(2026, 1, 15), [network], registry.municipality_index().names,
                          {"grundskola": _grundskola_facts()}, {"grundskola": _attendance()})  # fmt: skip
    (item,) = report.networks
    assert report.complete
    assert (item.held, item.planned, item.cancelled, item.minimum) == (3, 0, 1, 4)
    assert item.verdict is Verdict.NOT_MET
    assert "Nätverket har hållit 3 av minst 4 möten." in item.reasons
    assert any("12 september 2025 saknas" in reason for reason in item.reasons)


def test_days_from_meeting_to_minutes_use_the_first_minutes_received(registry: Registry) -> None:
    network = registry.network("grundskola")
    report = build_report(2025, date(2026, 1, 15), [network], registry.municipality_index().names,
                          {"grundskola": _grundskola_facts()}, {"grundskola": _attendance()})  # fmt: skip
    held = [m for m in report.networks[0].meetings if m.status is MeetingStatus.HELD]
    assert [(m.date.isoformat(), m.days_to_minutes, m.minutes_late) for m in held] == [
        ("2025-03-14", 5, False), ("2025-05-09", 24, True), ("2025-09-12", None, False),
    ]  # fmt: skip
    assert report.networks[0].minutes_received == 2
    assert report.networks[0].minutes_sentence() == "2 av 3 protokoll har kommit in, i genomsnitt 14 dagar efter mötet."


def test_members_are_counted_per_municipality_with_the_federation_apart(registry: Registry) -> None:
    names = registry.municipality_index().names
    report = build_report(2025, date(2026, 1, 15), [registry.network("grundskola")], names,
                          {"grundskola": _grundskola_facts()}, {})  # fmt: skip
    counts = dict(report.networks[0].members_by_municipality)
    assert list(counts) == [*names, OTHER_MEMBERS]
    assert (counts["Skövde"], counts["Hjo"], counts["Vara"], counts[OTHER_MEMBERS]) == (2, 1, 0, 1)
    assert report.networks[0].members_total == 4
    assert report.networks[0].municipalities_represented == 2


def test_attendance_grid_has_every_municipality_and_each_held_meeting_with_minutes(registry: Registry) -> None:
    names = registry.municipality_index().names
    report = build_report(2025, date(2026, 1, 15), [registry.network("grundskola")], names,
                          {"grundskola": _grundskola_facts()}, {"grundskola": _attendance()})  # fmt: skip
    item = report.networks[0]
    assert item.attendance_meetings == (date(2025, 3, 14), date(2025, 5, 9))
    grid = {row.municipality: (row.present, row.total) for row in item.attendance}
    assert len(grid) == 15
    assert grid["Skövde"] == ((True, True), 2)
    assert grid["Hjo"] == ((True, False), 1)
    assert grid["Vara"] == ((False, False), 0)
    assert item.attendance_counts == (2, 1)


def test_a_running_year_is_judged_per_the_day_and_only_at_risk(registry: Registry) -> None:
    names = registry.municipality_index().names
    facts = _grundskola_facts()
    facts = NetworkFacts(facts.member_lists, facts.meetings + (_meeting(date(2025, 12, 4)),), facts.minutes)
    report = build_report(2025, date(2025, 5, 20), [registry.network("grundskola")], names, {"grundskola": facts}, {})
    item = report.networks[0]
    assert not report.complete and report.as_of == date(2025, 5, 20)
    assert (item.held, item.planned) == (2, 2)
    assert item.verdict is Verdict.MET  # 2 held + 2 planned reach the minimum of 4; nothing overdue yet
    assert any("9 maj 2025 ska skickas in senast 23 maj 2025" in text for text in item.pending)
    assert "Nätverket har hållit 2 av minst 4 möten (2 möten till är planerade)." in item.pending
    html = render_report(report)
    assert "per 20 maj 2025" in html and "Året pågår." in html


def test_mail_waiting_in_review_means_the_verdict_cannot_be_in_phase(registry: Registry) -> None:
    names = registry.municipality_index().names
    facts = _grundskola_facts()
    facts = NetworkFacts(facts.member_lists, facts.meetings + (_meeting(date(2025, 12, 4)),), facts.minutes)
    waiting = {"grundskola": (("minutes",), ("member_list", "minutes"))}
    report = build_report(2025, date(2025, 5, 20), [registry.network("grundskola")], names, {"grundskola": facts}, {},
                          waiting)  # fmt: skip
    (item,) = report.networks
    assert item.verdict is Verdict.INCOMPLETE  # the same facts without the waiting mail are "I fas" (test above)
    assert item.reasons == (
        "2 mejl väntar på granskning (medlemsförteckning och protokoll). Bedömningen kan ändras när de är granskade.",
    )
    html = render_report(report)
    assert "Underlaget ofullständigt" in html and 'data-testid="review-grundskola"' in html
    assert "I fas" not in html


def test_the_report_lists_every_deliverable_with_its_lateness(registry: Registry) -> None:
    names = registry.municipality_index().names
    plan = DeliverableFact("kompetensutvecklingsplan-2023-2025", date(2025, 11, 14))
    vux = DeliverableFact("komx-delrapport-2021", date(2021, 6, 28))
    report = build_report(2025, date(2025, 11, 21), [registry.network("introduktion"), registry.network("vux")],
                          names, {"introduktion": NetworkFacts(deliverables=(plan,)),
                                  "vux": NetworkFacts(deliverables=(vux,))}, {})  # fmt: skip
    introduktion, vuxen = report.networks
    (row,) = introduktion.deliverables
    assert (row.received, row.days_late, row.missing) == (date(2025, 11, 14), 684, False)
    assert row.sentence() == "Kom in 14 november 2025, 684 dagar för sent."
    assert len(vuxen.deliverables) == 6 and (vuxen.deliverables_received, vuxen.deliverables_due) == (1, 6)
    assert [d.missing for d in vuxen.deliverables].count(True) == 5
    # Still missing from 2021-2022, so the 2025 verdict names them.
    assert (
        vuxen.verdict is Verdict.NOT_MET
        and sum(r.startswith(("Delrapport", "Återrapport")) for r in vuxen.reasons) == 5
    )
    html = render_report(report)
    assert html.count('data-field="deliverable-state"') == 7 and "Leveranser enligt uppdraget" in html


def test_what_came_in_after_the_day_is_not_known_on_it() -> None:
    known = facts_known_on(_grundskola_facts(), date(2025, 5, 31))
    assert [m.received_on for m in known.minutes] == [date(2025, 3, 19), date(2025, 3, 25)]
    assert len(known.member_lists) == 1


def test_the_html_is_self_contained(registry: Registry) -> None:
    names = registry.municipality_index().names
    report = build_report(2025, date(2026, 1, 15), registry.networks, names, {"grundskola": _grundskola_facts()},
                          {"grundskola": _attendance()})  # fmt: skip
    html = render_report(report)
    assert html.startswith("<!DOCTYPE html>") and '<html lang="sv">' in html
    assert "<script" not in html and "<link" not in html and "src=" not in html and "url(" not in html
    assert html.count("<svg") == 2  # meetings of all networks, days to minutes of the one with meetings
    assert "Nätverket har hållit 3 av minst 4 möten." in html


# --- from the database (SQLite and PostgreSQL) ------------------------------------------------------


def _mail(session: Session, received: datetime, kinds: str, network: str) -> int:
    mail = InboundMail(
        sha256=os.urandom(32).hex(), message_id=f"<{os.urandom(6).hex()}@hjo.se>", folder="INBOX",
        from_address="cia@hjo.se", subject=kinds, received=received, first_seen=received, status="registered",
        kinds=kinds, network_key=network,
    )  # fmt: skip
    session.add(mail)
    session.flush()
    assert mail.id is not None
    return mail.id


def _fill(engine: Engine) -> None:
    """grundskola 2025: a member list with a school chief, four meetings, minutes with attendance for two."""
    with Session(engine) as session:
        listed = datetime(2025, 1, 10, 9, 0, tzinfo=UTC)
        members = [
            record.NewMember("Anna Berg", "anna.berg@skovde.se", "Skövde", "chair"),
            record.NewMember("Cia Lund", "cia.lund@hjo.se", "Hjo", "secretary"),
            record.NewMember("Bo Ek", "bo.ek@vara.se", "Vara", "member"),
            record.NewMember("Sara Chef", "sara.chef@skovde.se", "Skövde", "school_chief"),
        ]
        record.member_list(session, "grundskola", members, [], listed, "body",
                           _mail(session, listed, "member_list", "grundskola"), TZ)  # fmt: skip
        dates_mail = _mail(session, datetime(2025, 1, 12, 9, 0, tzinfo=UTC), "meeting_dates", "grundskola")
        for day in (date(2025, 2, 6), date(2025, 4, 3), date(2025, 9, 11), date(2025, 11, 27)):
            record.announced_meeting(session, "grundskola", day, time(9, 0), None, "Stadshuset, Hjo", dates_mail)
        for day, received, present in (
            (date(2025, 2, 6), datetime(2025, 2, 10, 8, 0, tzinfo=UTC), ["Skövde", "Hjo"]),
            (date(2025, 4, 3), datetime(2025, 4, 30, 8, 0, tzinfo=UTC), ["Skövde", "Hjo", "Vara"]),
        ):
            mail = _mail(session, received, "minutes", "grundskola")
            doc, _ = record.document(session, f"protokoll-{day}.pdf", "application/pdf", os.urandom(16), "", mail)
            record.minutes(session, "grundskola", day, doc, present, received, mail)
        session.commit()


@pytest.fixture
def runtime(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    for name in list(os.environ):
        if name.startswith("MAILBOT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    rt = Runtime(config_path=None, overrides={"database": {"url": database_url}, "smtp": {"directory": tmp_path}})
    _fill(rt.engine())
    yield rt
    rt.engine().dispose()


def test_report_from_the_registry_counts_meetings_minutes_members_and_attendance(runtime: Runtime) -> None:
    with Session(runtime.engine()) as session:
        report = gather_report(session, runtime.registry, 2025, date(2026, 1, 20), runtime.tz, ["grundskola"])
    (item,) = report.networks
    assert (item.held, item.minimum, item.minutes_received, item.members_total) == (4, 4, 2, 4)
    assert [m.days_to_minutes for m in item.meetings] == [4, 27, None, None]
    assert dict(item.members_by_municipality)["Skövde"] == 2
    assert {row.municipality: row.total for row in item.attendance if row.total} == {"Skövde": 2, "Hjo": 2, "Vara": 1}
    assert item.verdict is Verdict.NOT_MET  # minutes of September and November never came


def test_january_mail_goes_once_to_the_school_chief_and_the_admin(runtime: Runtime) -> None:
    now = datetime(2026, 1, 15, 7, 0, tzinfo=UTC)
    queued = queue_yearly_reports(runtime, date(2026, 1, 15), now)
    keys = {item["dedup_key"]: item for item in queued}
    assert {"report:2025:grundskola", "report:2025:admin"} <= set(keys)
    assert keys["report:2025:grundskola"]["to"] == ["sara.chef@skovde.se"]
    assert keys["report:2025:admin"]["to"] == ["utbildning@skaraborg.se"]
    # Networks with no known school chief get no mail of their own; the admin's mail says so.
    assert "report:2025:vux" not in keys
    assert queue_yearly_reports(runtime, date(2026, 1, 15), now) == []
    assert queue_yearly_reports(runtime, date(2026, 1, 28), now) == []
    with Session(runtime.engine()) as session:
        rows = queued_reports(session, 2025)
    assert sorted(row.dedup_key for row in rows) == sorted(keys)
    admin = next(row for row in rows if row.dedup_key == "report:2025:admin")
    without = [n.name for n in runtime.registry.networks if n.key != "grundskola"]
    named = ", ".join(without[:-1]) + " och " + without[-1]
    assert f"Ingen skol- och utbildningschef är känd för {named}, så de rapporterna" in admin.body_text


def test_january_mail_carries_the_report_as_an_html_attachment(runtime: Runtime) -> None:
    queue_yearly_reports(runtime, date(2026, 1, 16), datetime(2026, 1, 16, 7, 0, tzinfo=UTC))
    with Session(runtime.engine()) as session:
        row = next(r for r in queued_reports(session, 2025) if r.network_key == "grundskola")
        admin = next(r for r in queued_reports(session, 2025) if r.network_key is None)
    data = message_of(row, runtime.settings).as_bytes()
    assert data == message_of(row, runtime.settings).as_bytes()  # a re-send is the same bytes
    parsed = email.message_from_bytes(data, policy=policy.default)
    assert parsed.get_content_type() == "multipart/mixed"
    assert parsed["Subject"] == "Årsrapport 2025 för nätverket Rektorer i grundskolan"
    (attachment,) = list(parsed.iter_attachments())
    assert attachment.get_filename() == "arsrapport-2025-grundskola.html"
    html = attachment.get_content()
    assert "Årsrapport 2025" in html and "Rektorer i grundskolan" in html and "Vuxenutbildning" not in html
    body = parsed.get_body(preferencelist=("plain",)).get_content()
    assert "Nätverket har inte uppfyllt sitt uppdrag." in body
    assert "Nätverket har hållit 4 möten (minst 4 krävs)." in body
    assert "Ingen skol- och utbildningschef är känd för" in admin.body_text


@pytest.mark.parametrize("today", [date(2026, 1, 14), date(2026, 2, 1), date(2025, 12, 31)])
def test_no_report_mail_outside_january_from_the_mail_day(runtime: Runtime, today: date) -> None:
    assert runtime.settings.report.mail_day == 15
    assert queue_yearly_reports(runtime, today, datetime(2026, 1, 14, tzinfo=UTC)) == []


def test_no_report_mail_when_switched_off(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    rt = Runtime(config_path=None, overrides={"database": {"url": database_url}, "report": {"enabled": False}})
    assert queue_yearly_reports(rt, date(2026, 1, 20), datetime(2026, 1, 20, tzinfo=UTC)) == []


# --- the command ------------------------------------------------------------------------------------


@pytest.fixture
def invoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry: Registry):  # type: ignore[no-untyped-def]
    for name in list(os.environ):
        if name.startswith("MAILBOT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "registry.sqlite3"
    engine = open_registry(f"sqlite:///{db}", registry)
    _fill(engine)
    engine.dispose()
    settings = tmp_path / "mailbot.toml"
    settings.write_text(f'[database]\nurl = "sqlite:///{db}"\n', encoding="utf-8")
    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["--config", str(settings), "report", *args])


def test_report_command_writes_the_html(invoke, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = invoke("--year", "2025", "--as-of", "2026-01-10", "--out", str(tmp_path / "r.html"))
    assert result.exit_code == 0, result.output
    assert "Årsrapport 2025: 5 nätverk ->" in result.stdout
    # The console summary gives each verdict with its reasons (not a count of meetings that says nothing of why).
    lines = result.stdout.splitlines()
    at = lines.index("  grundskola: Uppdraget inte uppfyllt")
    assert lines[at + 1].startswith("    – ") and "meetings held" not in result.stdout
    assert "Rektorer i grundskolan" in (tmp_path / "r.html").read_text(encoding="utf-8")


def test_report_command_json_for_one_network(invoke, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import json

    result = invoke("--year", "2025", "--as-of", "2025-06-01", "--network", "grundskola", "--json",
                    "--out", str(tmp_path / "r.html"))  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["complete"] is False and data["as_of"] == "2025-06-01"
    assert [(n["key"], n["meetings_held"], n["meetings_planned"]) for n in data["networks"]] == [("grundskola", 2, 2)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--year", "2031", "--as-of", "2026-01-10"), "--year: 2031 has not begun on 2026-01-10"),
        (("--year", "1999"), "not a year the registry can hold"),
        (("--year", "2025", "--network", "gymnasiet"), "unknown network 'gymnasiet'"),
        (("--year", "2025", "--as-of", "2025-02-30"), "--as-of: '2025-02-30' is not a valid date"),
    ],
)
def test_report_command_bad_usage_exits_2(invoke, tmp_path: Path, args: tuple[str, ...], message: str) -> None:  # type: ignore[no-untyped-def]
    result = invoke(*args, "--out", str(tmp_path / "r.html"))
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert not (tmp_path / "r.html").exists()


def test_report_command_without_a_browser_cannot_write_a_pdf(invoke, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = invoke("--year", "2025", "--as-of", "2026-01-10", "--out", str(tmp_path / "r.html"),
                    "--pdf", str(tmp_path / "r.pdf"))  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "error: no PDF converter installed (install Debian's chromium)" in result.stderr


# --- as a person sees it: the demo registry in headless Chromium -----------------------------------


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`mailbot ...` or `registry ...` as a subprocess, from this checkout."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_")}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), environment.get("PYTHONPATH")]))
    entry = "from mailbot.cli import main" if args[0] == "mailbot" else "from registry.cli import main"
    return subprocess.run([sys.executable, "-c", f"{entry}; main()", *args[1:]], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(working directory, HTML, PDF) after `mailbot demo` and `registry report` on the sample, per 21 November."""
    cwd = tmp_path_factory.mktemp("report-demo")
    result = _run(["mailbot", "demo"], cwd)
    assert result.returncode == 0, result.stderr
    html, pdf = cwd / "var" / "arsrapport-2025.html", cwd / "var" / "arsrapport-2025.pdf"
    result = _run(["registry", "report", "--year", "2025", "--as-of", "2025-11-21", "--out", str(html),
                   "--pdf", str(pdf)], cwd)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return cwd, html, pdf


def _expected(cwd: Path, registry: Registry, as_of: date) -> dict[str, dict[str, object]]:
    """The figures for each network, read from the demo's database the plain way (not through report.py)."""
    engine = open_registry(f"sqlite:///{cwd / 'var' / 'registry.sqlite3'}", registry, create=False)
    expected: dict[str, dict[str, object]] = {}
    try:
        with Session(engine) as session:
            for network in registry.networks:
                facts = network_facts(session, network.key, TZ)
                held = {m.date for m in facts.meetings if m.date.year == 2025 and m.date < as_of
                        and m.status != MeetingStatus.CANCELLED}  # fmt: skip
                with_minutes = {m.meeting_date for m in facts.minutes if m.received_on <= as_of} & held
                expected[network.key] = {
                    "name": network.name,
                    "held": len(held),
                    "minimum": network.min_meetings_per_year,
                    "minutes": f"{len(with_minutes)} av {len(held)}",
                    "members": len(members_in_force(session, network.key, as_of)),
                }
    finally:
        engine.dispose()
    return expected


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (installed by .ci/run)")
def test_report_in_chromium_shows_the_registry_figures(
    demo_report: tuple[Path, Path, Path], registry: Registry
) -> None:
    from playwright.sync_api import sync_playwright  # the dev extra; Debian's chromium, never `playwright install`

    cwd, html, _ = demo_report
    expected = _expected(cwd, registry, date(2025, 11, 21))
    screenshot = artifacts_dir() / "arsrapport-2025.png"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(html.as_uri())
            page.screenshot(path=str(screenshot), full_page=True)
            assert page.get_by_role("heading", level=1).inner_text() == "Årsrapport 2025"
            assert "per 21 november 2025" in page.inner_text("header")
            headings = page.get_by_role("heading", level=2).all_inner_texts()
            assert headings == ["Översikt: har nätverken uppfyllt sina uppdrag?"] + [
                str(e["name"]) for e in expected.values()
            ]
            for key, figures in expected.items():
                row = page.locator(f'tr[data-network="{key}"]')
                for field in ("held", "minimum", "minutes", "members"):
                    shown = row.locator(f'[data-field="{field}"]').inner_text().strip()
                    assert shown == str(figures[field]), (key, field)
                section = page.get_by_test_id(f"network-{key}")
                assert section.locator('[data-field="members-total"]').inner_text().strip() == str(figures["members"])
                if int(str(figures["held"])) < int(str(figures["minimum"])):
                    assert f"{figures['held']} av minst {figures['minimum']} möten" in section.inner_text()
            verdicts = page.locator('tr[data-network] [data-field="verdict"]').all_inner_texts()
            met = sum(1 for text in verdicts if text == "I fas")
            assert page.get_by_test_id("summary-line").inner_text() == (
                f"{met} av {len(expected)} nätverk ligger i fas per 21 november 2025."
            )
        finally:
            browser.close()
    assert screenshot.stat().st_size > 50_000


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (installed by .ci/run)")
def test_report_pdf_has_the_title(demo_report: tuple[Path, Path, Path]) -> None:
    _, _, pdf = demo_report
    reader = PdfReader(pdf)
    first = reader.pages[0].extract_text()
    assert "Årsrapport 2025" in first
    assert "Rektorer i grundskolan" in "".join(page.extract_text() for page in reader.pages)
    shutil.copy(pdf, artifacts_dir() / pdf.name)


# --- on paper: A4 pages that fit -------------------------------------------------------------------

# The template's @page: A4 with 15 mm margins, so the content box is 180 mm wide (portrait) or 267 mm (landscape).
MM = 96 / 25.4  # CSS px per millimetre
CONTENT_WIDTH_PX = 180 * MM
PAGE_POINTS = {(595, 842): "portrait", (842, 595): "landscape"}


def _widest_boxes(html: Path, width: float) -> list[tuple[str, float, float]]:
    """(element, right edge, overflow) of every table and chart in print emulation at `width` CSS px that does
    not fit it: the right edge is past the content box or the content is wider than the box it is drawn in."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": int(width), "height": 1000})
            page.emulate_media(media="print")
            page.goto(html.as_uri())
            boxes = page.evaluate(
                """(width) => [...document.querySelectorAll('table, svg, td, th')].map(e => {
                const r = e.getBoundingClientRect();
                return [e.tagName + '.' + (e.className.baseVal ?? e.className) + ' ' + (e.closest('[id]')?.id ?? ''),
                        r.right, e.scrollWidth - e.clientWidth];
            }).filter(([, right, over]) => right > width + 0.5 || over > 1)""",
                width,
            )
            why = page.evaluate("""() => [...document.querySelectorAll('table.overview td.why')].map(
                cell => cell.getBoundingClientRect().width / cell.closest('table').getBoundingClientRect().width)""")
        finally:
            browser.close()
    assert why and min(why) > 0.95  # the "Varför" text runs across the whole table under its network's figures
    return [(str(name), float(right), float(over)) for name, right, over in boxes]


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (installed by .ci/run)")
def test_report_in_print_at_a4_has_no_table_wider_than_the_content_box(demo_report: tuple[Path, Path, Path]) -> None:
    _, html, _ = demo_report
    assert _widest_boxes(html, CONTENT_WIDTH_PX) == []


def _page_images(pdf: Path, prefix: str) -> list[Path]:
    """The PDF's pages as PNG at 50 dpi in the test artefacts, the way a person looks at them (pdftoppm)."""
    for old in artifacts_dir().glob(f"{prefix}-*.png"):
        old.unlink()
    subprocess.run(["pdftoppm", "-r", "50", "-png", str(pdf), str(artifacts_dir() / prefix)], check=True,
                   capture_output=True, timeout=120)  # fmt: skip
    return sorted(artifacts_dir().glob(f"{prefix}-*.png"))


def _ink_in_margins(image_file: Path) -> list[str]:
    """The margins (15 mm; 5 mm of slack inside them) where the page image has anything but white."""
    from PIL import Image

    with Image.open(image_file) as opened:
        image = opened.convert("L")
    width, height = image.size
    strip_x, strip_y = (
        round(width * 10 / (297 if width > height else 210)),
        round(height * 10 / (210 if width > height else 297)),
    )
    strips = {"left": (0, 0, strip_x, height), "right": (width - strip_x, 0, width, height),
              "top": (0, 0, width, strip_y), "bottom": (0, height - strip_y, width, height)}  # fmt: skip
    return [side for side, box in strips.items() if image.crop(box).getextrema()[0] < 250]


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None or shutil.which("pdftoppm") is None, reason="needs chromium and poppler-utils")
def test_report_pdf_pages_are_a4_with_nothing_in_the_margins(demo_report: tuple[Path, Path, Path]) -> None:
    _, _, pdf = demo_report
    reader = PdfReader(pdf)
    sizes = {(round(float(p.mediabox.width)), round(float(p.mediabox.height))) for p in reader.pages}
    assert sizes <= set(PAGE_POINTS), sizes
    # the overview on page 1, each network starting on a page of its own (no section begins mid-page)
    starts = [i for i, page in enumerate(reader.pages) for line in page.extract_text().splitlines()[:3]
              if line.strip() in {"Skolutveckling i Skaraborg (SKIS)", "Rektorer i grundskolan", "Elevhälsa",
                                  "Introduktionsprogrammen", "Vuxenutbildning"}]  # fmt: skip
    assert len(starts) == 5 and starts == sorted(starts) and starts[0] > 0
    images = _page_images(pdf, "arsrapport-2025-sida")
    assert len(images) == len(reader.pages)
    assert {image.name: _ink_in_margins(image) for image in images if _ink_in_margins(image)} == {}


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None or shutil.which("pdftoppm") is None, reason="needs chromium and poppler-utils")
def test_an_attendance_grid_too_wide_for_portrait_gets_a_landscape_page(registry: Registry, tmp_path: Path) -> None:
    from registry.cli_report import write_pdf
    from registry.report import WIDE_GRID_MEETINGS

    days = [date(2025, 1, 3) + timedelta(weeks=week) for week in range(WIDE_GRID_MEETINGS + 4)]  # Fridays
    facts = NetworkFacts(meetings=tuple(_meeting(day) for day in days),
                         minutes=tuple(MinutesFact(day, day) for day in days))  # fmt: skip
    names = registry.municipality_index().names
    attendance = {day: frozenset(names[: 3 + i % 10]) for i, day in enumerate(days)}
    report = build_report(2025, date(2026, 1, 15), [registry.network("grundskola")], names,
                          {"grundskola": facts}, {"grundskola": attendance})  # fmt: skip
    html, pdf = tmp_path / "wide.html", tmp_path / "wide.pdf"
    html.write_text(render_report(report), encoding="utf-8")
    assert _widest_boxes(html, CONTENT_WIDTH_PX) != []  # in portrait the grid would not fit ...
    write_pdf(html, pdf)
    reader = PdfReader(pdf)
    orientation = [PAGE_POINTS[(round(float(p.mediabox.width)), round(float(p.mediabox.height)))] for p in reader.pages]
    (wide,) = [i for i, o in enumerate(orientation) if o == "landscape"]  # ... so it has a landscape page
    assert "Närvaro enligt protokoll" in reader.pages[wide].extract_text()
    assert orientation[0] == "portrait"
    images = _page_images(pdf, "arsrapport-bred-narvaro-sida")
    assert {image.name: _ink_in_margins(image) for image in images if _ink_in_margins(image)} == {}
