"""The admin's window, part two: `registry search`, `registry calendar`, `registry export-person`,
`registry forget`, `registry purge-raw-mail`. Registered in the command table of
registry/cli.py. What each command needs (iCalendar, Jinja2 for the site, the privacy and retention work) is imported
when it runs: `registry --help` and the other commands start without it."""

import logging
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Annotated

import typer

from registry.runtime import (
    AsOfOption,
    JsonOption,
    Runtime,
    UsageError,
    YearOption,
    context_runtime,
    print_json,
    print_table,
    reported_errors,
)

log = logging.getLogger("registry")
NetworkOption = Annotated[str | None, typer.Option("--network", help="Only this network.")]


def search(
    ctx: typer.Context,
    words: Annotated[
        str, typer.Argument(metavar="TEXT", help='Words to find; `elevhäls*` is a prefix, "a b" a phrase.')
    ],
    network: NetworkOption = None,
    year: YearOption = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many hits.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """Full-text search over the minutes and the registered mails."""
    from sqlmodel import Session

    from registry.search import search as run_search

    rt = context_runtime(ctx)
    with reported_errors(rt):
        key = rt.network_key(network) if network else None
        with Session(rt.reader()) as session:
            hits = run_search(session, words, key, year, limit)
        if as_json:
            print_json([h.as_json() for h in hits])
            return
        print_table(
            f"Sökträffar för {words!r}",
            ["kind", "id", "network", "date", "file / subject", "snippet"],
            [
                [
                    "protokoll" if h.kind == "minutes" else "mejl",
                    h.id,
                    h.network or "-",
                    h.meeting_date or (h.received or "")[:10],
                    h.filename or h.subject or "",
                    " ".join(h.snippet.split()),
                ]
                for h in hits
            ],
        )
        if not hits:
            typer.echo("Inga träffar.", err=True)


def calendar(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="The .ics file to write.")],
    network: NetworkOption = None,
) -> None:
    """Every planned, held and cancelled meeting as an iCalendar file (subscribe in Outlook or Thunderbird)."""
    from sqlmodel import Session

    from registry.calendar_feed import calendar as build_calendar
    from registry.calendar_feed import count_events

    rt = context_runtime(ctx)
    with reported_errors(rt):
        key = rt.network_key(network) if network else None
        with Session(rt.reader()) as session:
            cal = build_calendar(session, rt.registry, datetime.now(UTC), key)
        data = cal.to_ical()
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(out)
        typer.echo(f"{count_events(cal)} meetings -> {out}")


def export_person(
    ctx: typer.Context,
    address: Annotated[str, typer.Argument(metavar="EMAIL", help="The person's e-mail address.")],
) -> None:
    """Everything the registry holds about a person, as JSON (GDPR access request)."""
    from sqlmodel import Session

    from registry.privacy import person_export

    rt = context_runtime(ctx)
    with reported_errors(rt):
        if "@" not in address:
            raise UsageError(f"{address!r} is not an e-mail address")
        with Session(rt.reader()) as session:
            print_json(person_export(session, address))


def forget(
    ctx: typer.Context,
    address: Annotated[str, typer.Argument(metavar="EMAIL", help="The person's e-mail address.")],
    yes: Annotated[bool, typer.Option("--yes", metavar="", help="Do not ask for confirmation.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", metavar="", help="Say what would be erased; change nothing.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Erase a person: memberships anonymised, address out of the outbox, mails and documents naming them purged."""
    from registry.privacy import forget_person
    from registry.publication import publish_site, site_exists

    rt = context_runtime(ctx)
    with reported_errors(rt):
        if "@" not in address:
            raise UsageError(f"{address!r} is not an e-mail address")
        engine = rt.engine(create=False)
        if (
            not dry_run
            and not yes
            and not typer.confirm(
                "Erase this person from the registry? This cannot be undone.", default=False, err=True
            )
        ):
            typer.echo("Nothing erased.", err=True)
            raise typer.Exit(1)
        done = forget_person(engine, address, datetime.now(rt.tz).date(), _outbox_directory(rt), dry_run=dry_run)
        if done and not dry_run and site_exists(rt.settings.publication):
            # Rebuilt from the redacted registry, no earlier build kept, uploaded where configured.
            rebuilt = publish_site(rt, datetime.now(UTC), keep=0)
            done["public site rebuilt"] += 1
            if rebuilt.upload_error:
                log.error("forget: the rebuilt site could not be uploaded (retried by the worker): %s",
                          rebuilt.upload_error)  # fmt: skip
        summary = {what: count for what, count in sorted(done.items())}
        if as_json:
            print_json({"erased": bool(done) and not dry_run, "dry_run": dry_run, "done": summary})
            return
        if not done:
            typer.echo("The registry held nothing about that address.")
            return
        if dry_run:
            typer.echo("Would erase (nothing changed; run without --dry-run to erase):")
        for what, count in summary.items():
            typer.echo(f"{what}: {count}")


def _outbox_directory(rt: Runtime) -> Path | None:
    """Where the directory transport writes sent mail: smtp.directory, or the demo's var/outbox when no SMTP server
    is configured (what `mailbot demo` uses)."""
    smtp = rt.settings.smtp
    if smtp.directory is not None:
        return smtp.directory
    return Path("var/outbox") if smtp.host is None else None


def purge_raw_mail_command(
    ctx: typer.Context,
    as_of: AsOfOption = None,
    older_than_days: Annotated[
        int | None,
        typer.Option("--older-than-days", min=0, help="Default: retention.raw_mail_days (0 keeps everything)."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", metavar="", help="Only count what would be purged.")] = False,
    yes: Annotated[bool, typer.Option("--yes", metavar="", help="Do not ask for confirmation.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Purge the original bytes of old mails (retention); the facts, the mail rows and the documents stay."""
    from registry.privacy import compact
    from registry.retention import purge_raw_mail, retention_cutoff

    rt = context_runtime(ctx)
    with reported_errors(rt):
        days = rt.settings.retention.raw_mail_days if older_than_days is None else older_than_days
        now = (
            datetime.now(UTC)
            if as_of is None
            else datetime.combine(rt.today(as_of), time(0, 0), tzinfo=rt.tz).astimezone(UTC)
        )
        engine = rt.engine(create=False)
        cutoff = retention_cutoff(now, days)
        if cutoff is None:
            if as_json:
                print_json(purge_raw_mail(engine, days, now, dry_run=True).as_json())
            else:
                typer.echo("Retention is off (0 days): every original is kept.")
            return
        if not dry_run and not yes:
            planned = purge_raw_mail(engine, days, now, dry_run=True)
            if planned.purged and not typer.confirm(
                f"Purge the original bytes of {planned.purged} mails received before {cutoff.astimezone(rt.tz).date()}? "
                "The facts stay; the originals cannot be restored.",
                default=False,
                err=True,
            ):
                typer.echo("Nothing purged.", err=True)
                raise typer.Exit(1)
        report = purge_raw_mail(engine, days, now, dry_run=dry_run)
        if report.purged and not dry_run:
            compact(engine)
        if as_json:
            print_json(report.as_json())
            return
        verb = "would be purged" if dry_run else "purged"
        typer.echo(
            f"{report.purged} originals of mails received before {cutoff.astimezone(rt.tz).date()} {verb} "
            f"({report.bytes_freed} bytes); {report.kept_for_review} kept while waiting in review."
        )
