"""Scale: `registry status` and the daily reminder run over 1,000 networks and 5 years of mail (issue 8).

    python benchmarks/scale.py                                  # 1,000 networks, 2021-2025, SQLite and PostgreSQL
    python benchmarks/scale.py --networks 200 --engines sqlite  # quicker
    python benchmarks/scale.py --workdir /tmp/scale --keep      # keep (and on the next run reuse) the SQLite file

Generates a config directory with N networks (the five real ones repeated, with numbered keys, names and
aliases; the 15 municipalities of config/municipalities.toml) and fills a registry (schema from the real
migrations, via registry.db.open_registry) with Y years of member lists and memberships (15-40 members),
meetings (4-8 a year, a few cancelled), minutes with attendance and their documents, the inbound mail behind
every fact (raw bytes of a few KB), the odd mail in review, receipts, and a reminder ledger (weekly reminders
about what was overdue). Bulk inserts with SQLAlchemy Core, not through the intake.

Then, on a SQLite file and on a throwaway PostgreSQL cluster (tests/servers.py), each figure `--repeat` times
(median, min, max):

- cold processes (`python -m registry.cli ...`; wall time and the child's peak RSS from wait4):
  `registry status --as-of DATE` (the table, piped), `registry status --json`, `mailbot remind --dry-run`;
- in-process, in a fresh child process (so the fill does not count in its RSS): opening the registry,
  `status_findings` alone, `jobs.remind` dry run, and the real run (queue to the outbox, drain to a directory
  transport) first (the database reset to the filled state before each repeat) and second (nothing new).

`--index 'CREATE INDEX ...'` (repeatable) creates an extra index after the fill, to measure its effect.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

FIRST_NAMES = ("Anna Åsa Björn Cecilia David Eva Fredrik Gunilla Håkan Ingrid Johan Karin Lars Maria Nils Olof "
               "Per Rebecka Sofia Tomas Ulla Viktor Yvonne Örjan Ängla Mikael Lena Jonas Elin Göran").split()  # fmt: skip
LAST_NAMES = ("Andersson Johansson Karlsson Nilsson Eriksson Larsson Olsson Persson Svensson Gustafsson Pettersson "
              "Jonsson Öberg Åberg Lindqvist Ström Bäckström Håkansson Sjögren Lundgren").split()  # fmt: skip
WORDS = ("närvarande beslut skolutveckling elevhälsoplan läxhjälp kompetensutveckling budget rektor förskoleklass "
         "introduktionsprogram språkstöd vuxenutbildning uppföljning dagordning protokollet justeras ordförande "
         "sekreterare nästa möte övriga frågor information från kommunerna").split()  # fmt: skip
WEEKDAY_INDEX = {"monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4}


# --- the configuration ----------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | date):
        return str(value) if not isinstance(value, date) else value.isoformat()
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(value)


def write_config(folder: Path, count: int) -> None:
    """networks.toml with `count` networks (the five real ones in turn, numbered) and the real municipalities."""
    real = tomllib.loads((ROOT / "config" / "networks.toml").read_text(encoding="utf-8"))
    templates = list(real["networks"].items())
    lines = ["[defaults.deadlines]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in real.get("defaults", {}).get("deadlines", {}).items()]
    for index in range(count):
        base_key, template = templates[index % len(templates)]
        key = f"{base_key}-{index:04d}"
        lines += ["", f"[networks.{key}]"]
        for name, value in template.items():
            if isinstance(value, dict) or (isinstance(value, list) and value and isinstance(value[0], dict)):
                continue
            if name == "name":
                value = f"{value} {index:04d}"
            elif name == "aliases":
                value = [f"{base_key} {index:04d}", f"nätverk {index:04d}"]
            lines.append(f"{name} = {_toml_value(value)}")
        for table in ("deadlines", "quotes"):
            if table in template:
                lines += ["", f"[networks.{key}.{table}]"]
                lines += [f"{k} = {_toml_value(v)}" for k, v in template[table].items()]
        for deliverable in template.get("deliverables", []):
            lines += ["", f"[[networks.{key}.deliverables]]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in deliverable.items()]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "networks.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    shutil.copy(ROOT / "config" / "municipalities.toml", folder / "municipalities.toml")


# --- the registry ---------------------------------------------------------------------------------


@dataclass
class Rows:
    """Rows waiting for the next bulk insert, per table, and the next id of each table."""

    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    next_id: dict[str, int] = field(default_factory=dict)

    def add(self, table: str, **row: Any) -> int:
        row_id = self.next_id.get(table, 1)
        self.next_id[table] = row_id + 1
        self.tables.setdefault(table, []).append({"id": row_id, **row})
        return row_id

    def count(self) -> int:
        return sum(len(rows) for rows in self.tables.values())


ORDER = ("inbound_mail", "person", "document", "member_list", "membership", "meeting", "minutes",
         "deliverable_receipt", "outbound_mail", "reminder_item")  # fmt: skip


class Filler:
    """Generates the facts of one network at a time, as the intake would have recorded them."""

    def __init__(self, registry: Any, years: list[int], as_of: date, mail_kb: float, seed: int = 8) -> None:
        self.registry = registry
        self.years = years
        self.as_of = as_of
        self.mail_kb = mail_kb
        self.rng = random.Random(seed)
        self.pool = os.urandom(1 << 20)  # random bytes to slice attachments from (like a compressed PDF)
        self.municipalities = registry.municipalities
        self.rows = Rows()
        self.memberships: list[dict[str, Any]] = []  # of the network being generated
        self.mail_bytes = 0

    def _blob(self, low_kb: float, high_kb: float) -> bytes:
        size = int(self.rng.uniform(low_kb, high_kb) * 1024 * self.mail_kb)
        start = self.rng.randrange(0, len(self.pool) - size - 1)
        return self.pool[start : start + size]

    def _text(self, words: int) -> str:
        return " ".join(self.rng.choice(WORDS) for _ in range(words))

    def _moment(self, day: date) -> datetime:
        return datetime.combine(day, clock(self.rng.randint(6, 16), self.rng.randint(0, 59)), tzinfo=UTC)

    def mail(self, network: str, sender: str, subject: str, day: date, kinds: str, status: str = "registered",
             attachment: bytes = b"", reason: str | None = None) -> int:  # fmt: skip
        received = self._moment(day)
        body = f"Hej!\n\n{self._text(self.rng.randint(20, 60))}\n\nVänliga hälsningar\n"
        raw = (
            f"From: {sender}\r\nTo: utbildning@skaraborg.se\r\nSubject: {subject}\r\n"
            f"Date: {received:%a, %d %b %Y %H:%M:%S +0000}\r\nMessage-ID: <{self.rng.getrandbits(64):x}@example.se>\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n--b\r\n"
        ).encode()
        padding = attachment or self._blob(1.5, 5)
        raw += b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        raw += base64.encodebytes(padding) + b"--b--\r\n"
        self.mail_bytes += len(raw)
        mail_id = self.rows.next_id.get("inbound_mail", 1)
        return self.rows.add(
            "inbound_mail", sha256=f"{mail_id:064x}", message_id=f"m{mail_id}@example.se", folder="INBOX",
            uidvalidity=1, uid=mail_id, raw=raw, size=len(raw), from_address=sender, from_name=None, subject=subject,
            body_text=body, received=received, first_seen=received + timedelta(minutes=3), status=status,
            kinds=kinds, network_key=network if status != "ignored" else None, reason=reason,
            details="{}", resolved_at=None, resolution=None,
        )  # fmt: skip

    def _meeting_days(self, network: Any, year: int) -> list[date]:
        wanted = network.min_meetings_per_year
        count = self.rng.randint(max(4, wanted), 8) if self.rng.random() > 0.08 else max(wanted - 1, 1)
        months = sorted(self.rng.sample([1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12], min(count, 11)))
        weekday = WEEKDAY_INDEX.get(network.meeting_weekday or "", None)
        days = []
        for month in months:
            day = date(year, month, self.rng.randint(1, 22))
            target = weekday if weekday is not None and self.rng.random() < 0.95 else self.rng.randint(0, 4)
            days.append(day + timedelta(days=(target - day.weekday()) % 7))
        return days

    def network(self, index: int, network: Any) -> None:
        rng, as_of, rows = self.rng, self.as_of, self.rows
        key = network.key
        # The people of the network over the years, spread over the municipalities (one is sometimes absent).
        absent = rng.randrange(len(self.municipalities)) if rng.random() < 0.15 else None
        people = []
        for j in range(45):
            municipality = self.municipalities[j % len(self.municipalities)]
            if j % len(self.municipalities) == absent:
                municipality = self.municipalities[(j + 1) % len(self.municipalities)]
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            local = unicodedata.normalize("NFKD", f"{first}.{last}").encode("ascii", "ignore").decode()
            email = f"{local}.{index}.{j}@{municipality.domains[0]}".lower()
            people.append((rows.add("person", email=email, name=f"{first} {last}"), municipality.name, email))
        secretary = people[1][2]
        lists: list[tuple[int, date]] = []
        overdue: dict[date, list[str]] = {}  # reminder day -> obligation ids, for the ledger

        def remind_weekly(obligation: str, due: date, times: int) -> None:
            day = due + timedelta(days=1)
            for _ in range(times):
                while day.weekday() >= 5:
                    day += timedelta(days=1)
                if day >= as_of:
                    return
                overdue.setdefault(day, []).append(obligation)
                day += timedelta(days=7)

        for year in self.years:
            # The member list (and often the dates in the same mail), sent around new year.
            sent_list = rng.random() < (0.9 if year == as_of.year else 0.95)
            window = date(year - 1, 11, 1)
            list_day = min(window + timedelta(days=rng.randint(0, 105)), as_of)
            list_mail = None
            if sent_list:
                together = rng.random() < 0.5
                kinds = "member_list,meeting_dates" if together else "member_list"
                list_mail = self.mail(key, secretary, f"Medlemsförteckning {network.name} {year}", list_day, kinds)
                lists.append((self._member_list(key, list_mail, list_day, people), list_day))
                if rng.random() < 0.15 and date(year, 8, 20) < as_of:
                    update_day = date(year, 8, rng.randint(15, 30))
                    mail_id = self.mail(key, secretary, f"Uppdaterad medlemslista {year}", update_day, "member_list")
                    lists.append((self._member_list(key, mail_id, update_day, people), update_day))
            else:
                together = False
                remind_weekly(f"{key}:member_list:{year}", date(year, 1, 31), 3)
            dates_mail = None
            days = self._meeting_days(network, year)
            if rng.random() < 0.95:
                dates_day = list_day if together else min(window + timedelta(days=rng.randint(10, 110)), as_of)
                dates_mail = list_mail if together else self.mail(key, secretary, f"Mötesdatum {year}", dates_day,
                                                                  "meeting_dates")  # fmt: skip
            for day in days:
                cancelled = rng.random() < 0.05
                meeting_id = rows.add(
                    "meeting", network_key=key, date=day, start=clock(13, 0), end=clock(16, 0),
                    place=f"{rng.choice(self.municipalities).name}, kommunhuset",
                    status="cancelled" if cancelled else "planned", announced=dates_mail is not None,
                    calendar_uid=None, recurrence="", calendar_sequence=None,
                    source_mail_id=dates_mail or self.mail(key, secretary, f"Möte {day}", day, "meeting_dates"),
                    updated_by_mail_id=None,
                )  # fmt: skip
                if cancelled or day >= as_of:
                    continue
                due = day + timedelta(days=network.deadlines.minutes_days)
                sent = day + timedelta(days=rng.randint(1, 25))
                if rng.random() < 0.9 and sent <= as_of:
                    self._minutes(key, network, meeting_id, day, sent, secretary)
                    if sent > due:
                        remind_weekly(f"{key}:minutes:{day.isoformat()}", due, (sent - due).days // 7 + 1)
                elif year >= as_of.year - 1:
                    remind_weekly(f"{key}:minutes:{day.isoformat()}", due, 3)
            if network.yearly_commission_revision and rng.random() < 0.8:
                got = date(year, 11, rng.randint(10, 30)) + timedelta(days=rng.randint(0, 20))
                if got <= as_of:
                    mail_id = self.mail(key, people[0][2], f"Reviderad uppdragsbeskrivning {year}", got, "deliverable")
                    rows.add("deliverable_receipt", network_key=key, deliverable_key="commission_revision",
                             received=self._moment(got), document_id=None, source_mail_id=mail_id)  # fmt: skip
            for _ in range(rng.randint(1, 3)):  # the odd mail: a question, an auto-reply, a newsletter
                day = date(year, rng.randint(1, 12), rng.randint(1, 28))
                if day <= as_of:
                    status = rng.choice(("review", "ignored", "registered"))
                    reason = "no network or kind recognised" if status == "review" else None
                    self.mail(key, people[rng.randrange(45)][2], "Fråga om nätverket", day, "other", status,
                              reason=reason)  # fmt: skip
        for deliverable in network.deliverables:
            if rng.random() < 0.85 and deliverable.due <= as_of:
                got = deliverable.due - timedelta(days=rng.randint(0, 30))
                mail_id = self.mail(key, people[0][2], deliverable.title, got, "deliverable")
                rows.add("deliverable_receipt", network_key=key, deliverable_key=deliverable.key,
                         received=self._moment(got), document_id=None, source_mail_id=mail_id)  # fmt: skip
        # Each list closes the memberships of the one before it.
        for membership in self.memberships:
            later = [day for _list, day in lists if day > membership["valid_from"]]
            membership["valid_to"] = min(later) if later else None
        self.memberships.clear()
        self._ledger(key, overdue, [p[2] for p in people[:2]])

    def _member_list(self, key: str, mail_id: int, day: date, people: list[tuple[int, str, str]]) -> int:
        rng = self.rng
        chosen = people[:2] + rng.sample(people[2:], rng.randint(13, 38))
        list_id = self.rows.add("member_list", network_key=key, effective_from=day, received=self._moment(day),
                                source="Medlemmar.xlsx", rejected_rows="[]", source_mail_id=mail_id)  # fmt: skip
        for position, (person_id, municipality, _email) in enumerate(chosen):
            role = {0: "chair", 1: "secretary"}.get(position, "member")
            if position == 2 and rng.random() < 0.5:
                role = "presidium"
            elif position == 3 and rng.random() < 0.3:
                role = "school_chief"
            self.rows.add("membership", member_list_id=list_id, network_key=key, person_id=person_id, role=role,
                          municipality=municipality, valid_from=day, valid_to=None, source_mail_id=mail_id)  # fmt: skip
            self.memberships.append(self.rows.tables["membership"][-1])
        return list_id

    def _minutes(self, key: str, network: Any, meeting_id: int, day: date, sent: date, sender: str) -> None:
        present = sorted(self.rng.sample([m.name for m in self.municipalities], self.rng.randint(9, 15)))
        content = self._blob(2, 8)
        filename = f"{network.minutes_name.capitalize()} {day.isoformat()}.pdf"
        mail_id = self.mail(key, sender, f"{network.minutes_name.capitalize()} från mötet {day}", sent, "minutes",
                            attachment=content)  # fmt: skip
        text = f"{filename}\nNärvarande: {', '.join(present)}\n{self._text(self.rng.randint(120, 300))}"
        document_id = self.rows.next_id.get("document", 1)
        self.rows.add("document", sha256=f"{document_id:064x}", filename=filename, media_type="application/pdf",
                      content=content, text=text, source_mail_id=mail_id)  # fmt: skip
        self.rows.add("minutes", network_key=key, meeting_id=meeting_id, meeting_date=day, document_id=document_id,
                      received=self._moment(sent), municipalities_present=",".join(present),
                      source_mail_id=mail_id)  # fmt: skip

    def _ledger(self, key: str, overdue: dict[date, list[str]], to: list[str]) -> None:
        """The reminders that were sent (one digest per network and day), and the receipts of a third of the mail."""
        for day, obligations in sorted(overdue.items()):
            created = datetime.combine(day, clock(7, 0), tzinfo=UTC)
            outbound_id = self.rows.next_id.get("outbound_mail", 1)
            self.rows.add(
                "outbound_mail", dedup_key=f"reminder:{key}:{day.isoformat()}:{outbound_id:012x}", kind="reminder",
                network_key=key, recipients=",".join(to), cc="", subject=f"Påminnelse: {key}",
                body_text=self._text(150), body_html="", message_id=f"reminder-{outbound_id}@mailbot.skaraborg.se",
                in_reply_to=None, state="sent", attempts=1, next_attempt=None, last_error=None, created=created,
                sent_at=created, related_mail_id=None,
            )  # fmt: skip
            for obligation in obligations:
                self.rows.add("reminder_item", outbound_id=outbound_id, network_key=key, obligation_id=obligation,
                              sent_on=day, escalated=False)  # fmt: skip

    def receipts(self) -> None:
        for mail in self.rows.tables.get("inbound_mail", ()):
            if mail["status"] == "registered" and self.rng.random() < 0.33:
                outbound_id = self.rows.next_id.get("outbound_mail", 1)
                self.rows.add(
                    "outbound_mail", dedup_key=f"receipt:{mail['id']}", kind="receipt", network_key=mail["network_key"],
                    recipients=mail["from_address"], cc="", subject=f"Kvittens: {mail['subject']}",
                    body_text=self._text(80), body_html="", message_id=f"receipt-{outbound_id}@mailbot.skaraborg.se",
                    in_reply_to=mail["message_id"], state="sent", attempts=1, next_attempt=None, last_error=None,
                    created=mail["first_seen"], sent_at=mail["first_seen"], related_mail_id=mail["id"],
                )  # fmt: skip


def fill(engine: Any, registry: Any, years: list[int], as_of: date, mail_kb: float) -> dict[str, int]:
    """Bulk-insert the generated facts, 25 networks per transaction; returns the row count per table."""
    from sqlmodel import SQLModel

    tables = SQLModel.metadata.tables
    filler = Filler(registry, years, as_of, mail_kb)
    counts: dict[str, int] = {}
    started = time.perf_counter()
    networks = registry.networks
    batch = 25
    for first in range(0, len(networks), batch):
        for offset, network in enumerate(networks[first : first + batch]):
            filler.network(first + offset, network)
        filler.receipts()
        with engine.begin() as connection:
            for name in ORDER:
                rows = filler.rows.tables.get(name, [])
                if rows:
                    connection.execute(tables[name].insert(), rows)
                    counts[name] = counts.get(name, 0) + len(rows)
        filler.rows.tables.clear()
        done = min(first + batch, len(networks))
        if done % 100 == 0 or done == len(networks):
            print(f"  filled {done}/{len(networks)} networks, {sum(counts.values()):,} rows, "
                  f"{filler.mail_bytes / 2**20:,.0f} MiB of mail, {time.perf_counter() - started:.0f} s",
                  flush=True)  # fmt: skip
    if engine.dialect.name == "postgresql":  # explicit ids: move the sequences past them
        with engine.begin() as connection:
            for name in ORDER:
                connection.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT coalesce(max(id), 1) FROM {name}))"
                )
            connection.exec_driver_sql("ANALYZE")
    else:
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")
    return counts


# --- measuring ------------------------------------------------------------------------------------


def cold(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one cold process; its output is piped away, as from cron."""
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=errors)
        _pid, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            raise SystemExit(f"{' '.join(argv)} failed:\n{errors.read().decode(errors='replace')[-3000:]}")
    return seconds, usage.ru_maxrss / 1024


def figure(samples: list[float]) -> str:
    return f"{statistics.median(samples):7.3f} {min(samples):7.3f} {max(samples):7.3f}"


def inprocess_main(options: dict[str, Any]) -> None:
    """In a fresh process: the registry opened once, then each job timed `repeat` times. Prints JSON."""
    import resource

    from sqlalchemy import text

    from mailbot import jobs
    from registry.runtime import Runtime
    from registry.status import status_findings

    repeat = options["repeat"]
    today = date.fromisoformat(options["as_of"])
    now = datetime.combine(today, clock(8, 0), tzinfo=UTC)
    outbox = Path(options["outbox"])
    rt = Runtime(config_path=None)
    results: dict[str, Any] = {}

    def timed(name: str, job: Callable[[], object], before: Callable[[], None] | None = None) -> object:
        samples, result = [], None
        for _ in range(repeat):
            if before:
                before()
            started = time.perf_counter()
            result = job()
            samples.append(time.perf_counter() - started)
        results[name] = samples
        return result

    started = time.perf_counter()
    engine = rt.engine(create=False)
    results["load config + open registry"] = [time.perf_counter() - started]
    findings = timed("status_findings", lambda: status_findings(rt, today))
    results["findings"] = len(findings)  # type: ignore[arg-type]
    timed("remind --dry-run (in-process)", lambda: jobs.remind(rt, today, now, dry_run=True))
    with engine.connect() as connection:
        base = connection.execute(text("SELECT coalesce(max(id), 0) FROM outbound_mail")).scalar_one()

    def reset() -> None:
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM reminder_item WHERE outbound_id > :base"), {"base": base})
            connection.execute(text("DELETE FROM outbound_mail WHERE id > :base"), {"base": base})
        shutil.rmtree(outbox, ignore_errors=True)
        outbox.mkdir(parents=True)

    listing = timed("remind, first run (queue + send)", lambda: jobs.remind(rt, today, now), before=reset)
    results["reminders"] = len(listing)  # type: ignore[arg-type]
    results["files in outbox"] = len(list(outbox.iterdir()))
    again = timed("remind, second run (all queued)", lambda: jobs.remind(rt, today, now))
    results["queued on second run"] = sum(1 for entry in again if entry["queued"])  # type: ignore[union-attr]
    reset()  # back to the filled state, for a later run on a kept --workdir
    results["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(results))


def measure_engine(label: str, url: str, config: Path, workdir: Path, args: argparse.Namespace) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_")}
    env.update(MAILBOT_DATABASE__URL=url, MAILBOT_CONFIG_DIR=str(config), PYTHONPATH=str(ROOT),
               MAILBOT_SMTP__DIRECTORY=str(workdir / "outbox"))  # fmt: skip
    as_of = args.as_of.isoformat()
    commands = {
        f"registry status --as-of {as_of}": ["registry.cli", "status", "--as-of", as_of],
        "registry status --json": ["registry.cli", "status", "--as-of", as_of, "--json"],
        "mailbot remind --dry-run": ["mailbot.cli", "remind", "--as-of", as_of, "--dry-run"],
    }
    lines = []
    for name, argv in commands.items():
        seconds, rss = [], []
        for _ in range(args.repeat):
            wall, peak = cold([sys.executable, "-m", *argv], env, workdir)
            seconds.append(wall)
            rss.append(peak)
        lines.append(f"{label:10} {'cold: ' + name:48} {figure(seconds)} {max(rss):8.0f}")
        print(lines[-1], flush=True)
    options = {"repeat": args.repeat, "as_of": as_of, "outbox": str(workdir / "outbox")}
    done = subprocess.run([sys.executable, __file__, "--_inprocess", json.dumps(options)], env=env, cwd=workdir,
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"in-process measurements failed:\n{done.stderr[-3000:]}")
    results = json.loads(done.stdout.strip().splitlines()[-1])
    rss = results.pop("rss_mib")
    for name, samples in results.items():
        if isinstance(samples, list):
            lines.append(f"{label:10} {'in-process: ' + name:48} {figure(samples)} {rss:8.0f}")
            print(lines[-1], flush=True)
    counts = {name: value for name, value in results.items() if not isinstance(value, list)}
    lines.append(f"{label:10} " + ", ".join(f"{name}: {value}" for name, value in counts.items()))
    print(lines[-1], flush=True)
    return lines


def prepare(label: str, url: str, config: Path, args: argparse.Namespace, reuse: bool) -> None:
    from sqlalchemy import text

    from registry.config import load_registry
    from registry.db import open_registry

    registry = load_registry(config)
    engine = open_registry(url, registry)
    if not reuse:
        print(f"{label}: filling {len(registry.networks)} networks, {args.years} years ...", flush=True)
        started = time.perf_counter()
        years = list(range(args.as_of.year - args.years + 1, args.as_of.year + 1))
        counts = fill(engine, registry, years, args.as_of, args.mail_kb)
        print(f"{label}: filled in {time.perf_counter() - started:.0f} s: "
              + ", ".join(f"{name} {count:,}" for name, count in counts.items()), flush=True)  # fmt: skip
    for statement in args.index:
        with engine.begin() as connection:
            connection.execute(text(statement))
        print(f"{label}: extra index for this run: {statement}", flush=True)
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", type=int, default=1000)
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2025, 11, 21))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--mail-kb", type=float, default=1.0, help="scale the size of mails and documents")
    parser.add_argument("--index", action="append", default=[], help="an extra CREATE INDEX to measure")
    parser.add_argument("--workdir", type=Path, help="where the config and the SQLite file go (default: temp)")
    parser.add_argument("--keep", action="store_true", help="keep --workdir; a SQLite file there is reused")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="mailbot-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "config"
    reuse_config = (config / "networks.toml").is_file() and args.keep
    if not reuse_config:
        write_config(config, args.networks)
    table = [f"{'engine':10} {'what':48} {'median':>7} {'min':>7} {'max':>7} {'RSS MiB':>8}"]
    try:
        for engine in args.engines.split(","):
            if engine == "sqlite":
                path = workdir / "registry.sqlite3"
                reuse = reuse_config and path.exists()
                url = f"sqlite:///{path}"
                prepare("sqlite", url, config, args, reuse)
                print(f"sqlite: {path.stat().st_size / 2**20:,.0f} MiB", flush=True)
                table += measure_engine("sqlite", url, config, workdir, args)
            elif engine == "postgres":
                from tests.servers import PostgresServer

                server = PostgresServer()
                try:
                    server.init()
                    server.start()
                    url = server.url(server.create_database("scale"))
                    prepare("postgres", url, config, args, reuse=False)
                    table += measure_engine("postgres", url, config, workdir, args)
                finally:
                    server.close()
            else:
                raise SystemExit(f"unknown engine {engine!r} (sqlite, postgres)")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"\n{args.networks} networks, {args.years} years, as of {args.as_of}, {args.repeat} runs each "
          f"(seconds: median, min, max; peak RSS of the process):")  # fmt: skip
    print("\n".join(table))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--_inprocess":
        inprocess_main(json.loads(sys.argv[2]))
    else:
        main()
