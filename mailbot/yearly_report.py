"""The yearly report by mail: in January, last year's report to each network's school chief and to the admin.

Through the outbox, once per year: each mail has the dedup key `report:<year>:<network>` (or `:admin`), so a
second run, on the same or a later day, writes nothing. Never sends by itself: the caller drains the outbox.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from sqlmodel import Session, col, select

from mailbot.compose import environment, new_message_id, reply_to_address
from mailbot.outbox import add_once, begin_outer_transaction
from registry.domain import Role
from registry.models import BouncingAddress, OutboundMail
from registry.queries import members_in_force
from registry.report import NetworkReport, YearReport, gather_report, render_report
from registry.runtime import Runtime

log = logging.getLogger("mailbot")
KIND = "report"


def report_due(enabled: bool, mail_day: int, today: date) -> bool:
    """Whether `today` is a day to mail last year's report: in January, on or after the configured day."""
    return enabled and today.month == 1 and today.day >= mail_day


def dedup_key(year: int, recipient: str) -> str:
    """'report:2025:grundskola', 'report:2025:admin'."""
    return f"{KIND}:{year}:{recipient}"


def attachment_name(year: int, network_key: str | None) -> str:
    """'arsrapport-2025-grundskola.html', or 'arsrapport-2025.html' for the whole report."""
    return f"arsrapport-{year}-{network_key}.html" if network_key else f"arsrapport-{year}.html"


def _unique(addresses: list[str], exclude: set[str]) -> list[str]:
    seen = set(exclude)
    result = []
    for address in addresses:
        key = address.strip().lower()
        if key and key not in seen:
            seen.add(key)
            result.append(key)
    return result


def school_chiefs(session: Session, rt: Runtime, today: date, bouncing: set[str]) -> dict[str, list[str]]:
    """Per network: the school chiefs on the member list in force, and the one in the configuration."""
    chiefs = {}
    for network in rt.registry.networks:
        rows = members_in_force(session, network.key, today)
        listed = [str(r["email"]) for r in rows if r.get("email") and Role(str(r["role"])) is Role.SCHOOL_CHIEF]
        chiefs[network.key] = _unique(listed + ([network.school_chief] if network.school_chief else []), bouncing)
    return chiefs


def _mail_text(report: YearReport, network: NetworkReport | None, filename: str, shared_mailbox: str,
               without_chief: list[str]) -> str:  # fmt: skip
    return (
        environment()
        .get_template("report_mail.txt.j2")
        .render(
            report=report,
            network=network,
            filename=filename,
            shared_mailbox=shared_mailbox,
            without_chief=without_chief,
        )
    )


def _row(key: str, network_key: str | None, to: list[str], subject: str, text: str, filename: str, html: str,
         rt: Runtime, now: datetime) -> OutboundMail:  # fmt: skip
    return OutboundMail(
        dedup_key=key,
        kind=KIND,
        network_key=network_key,
        recipients=",".join(to),
        cc="",
        subject=subject,
        body_text=text,
        body_html="",
        message_id=new_message_id(KIND, rt.settings.smtp.message_id_domain),
        state="pending",
        attempts=0,
        created=now,
        attachment_name=filename,
        attachment_type="text/html",
        attachment=html.encode("utf-8"),
    )


def queue_yearly_reports(rt: Runtime, today: date, now: datetime) -> list[dict[str, Any]]:
    """In January (from report.mail_day), queue last year's report: one mail per network to its school chief(s)
    with that network's report attached, and one to the admin with the whole report. Returns what was queued.

    1. Not January, before the day, or switched off: nothing.
    2. The admin's row is written in the same commit as the networks' rows, so once it exists the year is
       done and the report is not even built again.
    3. Each row goes in its own SAVEPOINT: a row another worker wrote first (unique dedup key) is skipped.
    """
    settings = rt.settings
    if not report_due(settings.report.enabled, settings.report.mail_day, today):
        return []
    year = today.year - 1
    engine = rt.engine()
    shared_mailbox = reply_to_address(settings.smtp.reply_to)
    with Session(engine) as session:
        done = session.exec(select(OutboundMail.id).where(OutboundMail.dedup_key == dedup_key(year, "admin"))).first()
        if done is not None:
            return []
        report = gather_report(session, rt.registry, year, today, rt.tz)
        bouncing = {row.email.lower() for row in session.exec(select(BouncingAddress)).all()}
        chiefs = school_chiefs(session, rt, today, bouncing)
        without_chief = [n.name for n in report.networks if not chiefs.get(n.key)]
        rows = []
        for network in report.networks:
            to = chiefs.get(network.key, [])
            if not to:
                log.warning("yearly report %d: no school chief known for network %s; only the admin gets it",
                            year, network.key)  # fmt: skip
                continue
            filename = attachment_name(year, network.key)
            single = report.only(network.key)
            text = _mail_text(single, network, filename, shared_mailbox, [])
            subject = f"Årsrapport {year} för nätverket {network.name}"
            rows.append(_row(dedup_key(year, network.key), network.key, to, subject, text, filename,
                             render_report(single), rt, now))  # fmt: skip
        filename = attachment_name(year, None)
        admins = _unique(list(settings.admin.addresses), set())
        text = _mail_text(report, None, filename, shared_mailbox, without_chief)
        rows.append(_row(dedup_key(year, "admin"), None, admins, f"Årsrapport {year} för nätverken", text, filename,
                         render_report(report), rt, now))  # fmt: skip
        begin_outer_transaction(session)
        queued = [row for row in rows if add_once(session, row, settings)]
        session.commit()
        return [
            {
                "id": row.id,
                "dedup_key": row.dedup_key,
                "network": row.network_key,
                "to": row.recipients.split(","),
                "subject": row.subject,
                "attachment": row.attachment_name,
            }
            for row in queued
        ]


def queued_reports(session: Session, year: int) -> list[OutboundMail]:
    """The yearly-report rows of `year` in the outbox (for checks and tests)."""
    return list(
        session.exec(
            select(OutboundMail)
            .where(col(OutboundMail.dedup_key).startswith(f"{KIND}:{year}:"))
            .order_by(col(OutboundMail.id))
        ).all()
    )
