"""`mailbot`: the worker's commands. Thin: build the runtime, call a job, print the outcome.

Tables for people, one JSON document on stdout with --json; logs and errors on stderr.
"""

import logging
import signal
import sys
from dataclasses import asdict
from datetime import UTC, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from registry.paths import bundled
from registry.runtime import (
    ConfigDirOption,
    ConfigOption,
    DebugOption,
    JsonOption,
    LogFormatOption,
    Runtime,
    log_to_file,
    print_json,
    print_table,
    reported_errors,
    start,
)

# The jobs (and through them SQLModel, Jinja2, aiosmtplib, the understanding) are imported by the commands that
# run them, not here: `mailbot --help` and `mailbot check` start without them.
if TYPE_CHECKING:
    from mailbot import jobs

app = typer.Typer(help="The intake and reminder worker of Utbildning Skaraborg's network registry.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)  # fmt: skip
log = logging.getLogger("mailbot")

AsOfOption = Annotated[str | None, typer.Option("--as-of", help="Act as of this date (YYYY-MM-DD).")]


@app.callback()
def main_options(
    ctx: typer.Context,
    config: ConfigOption = None,
    config_dir: ConfigDirOption = None,
    debug: DebugOption = False,
    log_format: LogFormatOption = None,
) -> None:
    ctx.obj = start(config, debug, log_format, config_dir)


def _now(rt: Runtime, as_of: str | None) -> datetime:
    """Now, or the end of the working day of --as-of (so that everything of that day has happened)."""
    if as_of is None:
        return datetime.now(UTC)
    return datetime.combine(rt.today(as_of), time(17, 0), tzinfo=rt.tz).astimezone(UTC)


def _print_pass(result: "jobs.PollResult", as_json: bool, list_mails: bool = True) -> None:
    report = result.report
    if as_json:
        print_json(
            {
                "folder": report.folder,
                "new": report.new,
                "registered": report.registered,
                "review": report.review,
                "ignored": report.ignored,
                "already_recorded": report.already_recorded,
                "idle": report.idle,
                "mails": report.mails,
                "sent": len(result.drained.sent) if result.drained else 0,
                "site": asdict(result.published) if result.published else None,
            }  # fmt: skip
        )
        return
    from registry.swedish import MAIL_KIND_TEXT, MAIL_STATUS_TEXT

    if report.recorded and list_mails:
        print_table("Inlästa mejl", ["id", "från", "ämne", "status", "nätverk", "innehåll"],
                    [[m["id"], m["from"], m["subject"], MAIL_STATUS_TEXT.get(m["status"], m["status"]), m["network"],  # type: ignore[call-overload]
                      ", ".join(MAIL_KIND_TEXT.get(k, k) for k in m["kinds"])]  # type: ignore[union-attr]
                     for m in report.mails])  # fmt: skip
    sent = len(result.drained.sent) if result.drained else 0
    typer.echo(
        f"{report.folder}: {report.new} nya ({report.registered} registrerade, {report.review} till granskning, "
        f"{report.ignored} ignorerade), {report.already_recorded} redan inlästa; {sent} mejl skickade"
        + (" (inget nytt)" if report.idle else "")
    )


@app.command()
def poll(ctx: typer.Context, as_json: JsonOption = False,
         no_send: Annotated[bool, typer.Option("--no-send", metavar="", help="Queue receipts but do not send them.")] = False,
         as_of: AsOfOption = None) -> None:  # fmt: skip
    """One intake pass over the configured mailbox, then send the receipts it queued."""
    rt: Runtime = ctx.obj
    with reported_errors(rt):
        from rich.progress import Progress

        from mailbot import jobs

        now = _now(rt, as_of)
        if sys.stderr.isatty() and not as_json:
            with Progress(transient=True) as bar:
                task = bar.add_task("Läser mejl", total=None)
                result = jobs.poll(rt, now, lambda n: bar.advance(task, n), send=not no_send)
        else:
            result = jobs.poll(rt, now, send=not no_send)
        from mailbot.reader import close_readers

        close_readers()  # one pass only: the readers' memory and processes are not needed for what follows
        # The public site: new minutes of an `auto` network, approved ones, or a failed upload to retry.
        result.published = published = jobs.publish_if_due(rt, now)
        _print_pass(result, as_json)
        if published.upload_error:
            typer.echo(f"warning: the public site could not be uploaded: {published.upload_error}", err=True)


@app.command()
def remind(ctx: typer.Context, as_of: AsOfOption = None,
           dry_run: Annotated[bool, typer.Option("--dry-run", metavar="", help="List the reminders; send and record nothing.")] = False,
           as_json: JsonOption = False) -> None:  # fmt: skip
    """Evaluate obligations as of DATE and send the reminders that are due."""
    rt: Runtime = ctx.obj
    with reported_errors(rt):
        from mailbot import jobs
        from mailbot.working_days import is_working_day

        today = rt.today(as_of)
        rt.engine(create=False)  # reminders need a registry; only poll, run and demo make one
        listing = jobs.remind(rt, today, _now(rt, as_of), dry_run=dry_run)
        if as_json:
            print_json([{k: v for k, v in item.items() if k != "text"} for item in listing])
            return
        if not listing:
            typer.echo(f"{today}: no reminders due" + ("" if is_working_day(today) else " (not a working day)"))
            return
        print_table(f"Påminnelser {today}" + (" (dry run)" if dry_run else ""), ["network", "to", "cc", "subject", "items"],
                    [[i["network"] or "(admin)", ", ".join(i["to"]), ", ".join(i["cc"]), i["subject"], len(i["obligations"])]  # type: ignore[arg-type]
                     for i in listing])  # fmt: skip


@app.command()
def demo(ctx: typer.Context, as_of: AsOfOption = None, as_json: JsonOption = False) -> None:
    """The embedded default: read the bundled sample Maildir into the SQLite registry, show the status and
    write the reminders it would send to var/outbox/."""
    rt: Runtime = ctx.obj
    with reported_errors(rt):
        from mailbot import jobs

        sample = bundled("sample")
        overrides: dict[str, object] = {}
        if rt.settings.maildir is None and rt.settings.imap.host is None:
            overrides["maildir"] = sample / "maildir"
        if rt.settings.smtp.host is None and rt.settings.smtp.directory is None:
            overrides["smtp"] = {**rt.settings.smtp.model_dump(), "directory": Path("var/outbox")}
        if overrides:
            rt = Runtime(config_path=rt.config_path, debug=rt.debug, overrides={**rt.overrides, **overrides})
        as_of = as_of or (sample / "as_of.txt").read_text(encoding="utf-8").strip()
        today = rt.today(as_of)
        now = _now(rt, as_of)
        log_file = None
        if not rt.debug:  # one INFO line per mail would bury the summary: the console shows warnings only
            log_file = Path("var") / "demo.log"
            log_to_file(log_file)
        result = jobs.poll(rt, now)
        listing = jobs.remind(rt, today, now)
        findings = jobs.status_findings(rt, today)
        if as_json:
            print_json({"as_of": today.isoformat(), "mails": result.report.recorded and len(result.report.recorded),
                        "status": [f.as_json() for f in findings],
                        "reminders": [{k: v for k, v in i.items() if k != "text"} for i in listing]})  # fmt: skip
            return
        _print_pass(result, False, list_mails=False)
        _print_receipts(rt, result)
        _print_demo_summary(rt, today, findings, listing)
        if log_file is not None:
            typer.echo(f"Loggen över varje inläst mejl finns i {log_file} (--debug visar den här).")


def _print_receipts(rt: Runtime, result: "jobs.PollResult") -> None:
    """Why registered mails got no receipt: in the demo most because the sample's mails are older than the
    receipt window (receipts.max_age_days) on the demo's day, which a reader would otherwise take for a fault."""
    refused = result.receipts_refused
    if not refused:
        return
    days = rt.settings.receipts.max_age_days
    why = {
        f"mail older than {days} days": f"kom in mer än {days} dagar före demokörningens dag "
        f"(receipts.max_age_days = {days}; exempelmejlen är spridda över året, och en kvittens veckor för sent "
        "skulle bara förvirra avsändaren)",
        "nothing registered that a receipt could confirm": "registrerade inget som en kvittens kan bekräfta",
        "no valid sender address": "har ingen giltig avsändaradress",
        "receipts are disabled": "fick ingen eftersom kvittenser är avstängda (receipts.enabled)",
    }
    parts = [f"{count} {why.get(reason, reason)}" for reason, count in refused.most_common()]
    typer.echo(f"Ingen kvittens för {sum(refused.values())} registrerade mejl: " + "; ".join(parts) + ".")


def _print_demo_summary(rt: Runtime, today, findings, listing) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import func
    from sqlmodel import Session, col, select

    from registry import queries
    from registry.models import OutboundMail
    from registry.swedish import OBLIGATION_TEXT, STATE_TEXT, plural

    rows = []
    with Session(rt.engine()) as session:
        for network in rt.registry.networks:
            meetings = queries.meetings(session, network.key, today.year, today)
            rows.append([
                network.key,
                len(queries.members_in_force(session, network.key, today)),
                sum(1 for m in meetings if m["status"] == "held"),
                sum(1 for m in meetings if m["status"] == "planned"),
                sum(1 for m in meetings if m["has_minutes"]),
                ", ".join(OBLIGATION_TEXT.get(o, o) for o in sorted({
                    f.obligation.value for f in findings
                    if f.network == network.key and f.state.value in ("overdue", "at_risk", "breach")})) or "-",
            ])  # fmt: skip
    headings = ["nätverk", "medlemmar", "hållna", "planerade", "med protokoll", "ligger efter med"]
    print_table(f"Nätverken per {today}", headings, rows)
    behind = [f for f in findings if f.state.value in ("overdue", "at_risk", "breach")]
    print_table("Det som saknas", ["nätverk", "skyldighet", "läge", "detaljer"],
                [[f.network, OBLIGATION_TEXT.get(f.obligation.value, f.obligation.value),
                  STATE_TEXT.get(f.state.value, f.state.value), f.detail] for f in behind])  # fmt: skip
    directory = rt.settings.smtp.directory
    queued = [i for i in listing if i.get("queued")]
    where = f"skrivna som .eml-filer i {directory}/" if directory else "skickade över SMTP"
    if listing:
        # The admin's summary is not a reminder: it goes to the federation, not to a network.
        reminders = [i for i in listing if i["network"]]
        summaries = len(listing) - len(reminders)
        counted = plural(len(reminders), "påminnelse", "påminnelser") + " till nätverk"
        if summaries:
            counted += " och administratörens sammanfattning"
        typer.echo(f"{counted} att skicka {today} ({len(queued)} nya i kön); {where}.")
    else:
        # A second run: the ledger already holds today's reminders, so none is due again (none is sent twice).
        with Session(rt.engine()) as session:
            earlier = session.exec(
                select(func.count()).select_from(OutboundMail).where(col(OutboundMail.kind) == "reminder")
            ).one()
            summaries = session.exec(
                select(func.count()).select_from(OutboundMail).where(col(OutboundMail.kind) == "admin_summary")
            ).one()
        also = f" (och {plural(summaries, 'sammanfattning', 'sammanfattningar')} till administratören)" if summaries else ""
        typer.echo(
            f"Inga nya påminnelser att skicka {today}: {plural(earlier, 'påminnelse', 'påminnelser')}{also} lades i"
            f" kön av en tidigare körning och ingen skickas två gånger ({where}; ta bort var/ för att börja om)."
        )
    typer.echo(f"Kör `registry status --as-of {today.isoformat()}` för att se varje skyldighet.")


@app.command()
def check(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Validate the configuration and try every connection (IMAP or Maildir, SMTP, database)."""
    rt: Runtime = ctx.obj
    with reported_errors(rt):
        from mailbot.health import run_checks

        results = run_checks(rt, datetime.now(UTC))
        ok = all(r["ok"] for r in results)
        if as_json:
            print_json({"ok": ok, "checks": results})
        else:
            print_table("mailbot check", ["kontroll", "resultat", "detaljer"],
                        [[r["name"], "ok" if r["ok"] else "FEL", r["detail"]] for r in results])  # fmt: skip
        if not ok:
            raise typer.Exit(1)


@app.command()
def run(ctx: typer.Context) -> None:
    """The long-running worker: polls on a schedule, sends reminders at the configured hour on working days."""
    rt: Runtime = ctx.obj
    with reported_errors(rt):
        from mailbot.worker import run_worker

        rt.engine(create=True)  # fail early on a bad database; the worker makes a new registry
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        run_worker(rt)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
