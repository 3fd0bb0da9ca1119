"""`registry`: the admin's window on the registry. Thin: parse options, call queries, print.

Tables for people, one JSON document on stdout with --json; logs and errors on stderr. The database side
(SQLAlchemy, the queries) is imported by the commands that read it: `registry --help` and `registry networks` start
without SQLAlchemy, and the listings query Core tables without SQLModel's ORM (benchmarks/startup.py).
"""

from datetime import datetime, time
from pathlib import Path
from typing import Annotated

import typer

from registry import cli_admin, cli_ops, cli_publish, cli_report
from registry.domain import MailKind
from registry.runtime import (
    AsOfOption,
    ConfigDirOption,
    ConfigOption,
    DebugOption,
    JsonOption,
    LogFormatOption,
    UsageError,
    YearOption,
    context_runtime,
    parse_date_option,
    print_json,
    print_table,
    reported_errors,
    start,
)
from registry.swedish import (
    MAIL_KIND_TEXT,
    MAIL_STATUS_TEXT,
    OBLIGATION_TEXT,
    STATE_TEXT,
    local_time_text,
    review_reason_text,
)

WEEKDAY_TEXT = {"monday": "måndag", "tuesday": "tisdag", "wednesday": "onsdag", "thursday": "torsdag",
                "friday": "fredag", "saturday": "lördag", "sunday": "söndag"}  # fmt: skip
SENDER_TEXT = {"secretary": "sekreteraren", "presidium": "presidiet"}
ROLE_TEXT = {"chair": "ordförande", "secretary": "sekreterare", "presidium": "presidium", "member": "ledamot",
             "school_chief": "skolchef"}  # fmt: skip
MEETING_STATUS_TEXT = {"planned": "planerat", "held": "hållet", "cancelled": "inställt"}

app = typer.Typer(help="The admin's window on the network registry of Utbildning Skaraborg.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)  # fmt: skip


@app.callback()
def main_options(
    ctx: typer.Context,
    config: ConfigOption = None,
    config_dir: ConfigDirOption = None,
    debug: DebugOption = False,
    log_format: LogFormatOption = None,
) -> None:
    ctx.obj = start(config, debug, log_format, config_dir)


_runtime = context_runtime


@app.command()
def networks(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """The networks and their obligations."""
    rt = _runtime(ctx)
    with reported_errors(rt):
        rows = [
            {
                "key": n.key,
                "name": n.name,
                "min_meetings_per_year": n.min_meetings_per_year,
                "meeting_weekday": n.meeting_weekday,
                "list_and_dates_sent_by": n.list_and_dates_sent_by.value,
                "minutes_name": n.minutes_name,
                "minutes_published_on_web": n.minutes_published_on_web,
                "all_municipalities_represented": n.all_municipalities_represented,
                "yearly_commission_revision": n.yearly_commission_revision,
                "deadlines": n.deadlines.model_dump(),
                "deliverables": [{"key": d.key, "title": d.title, "due": d.due.isoformat()} for d in n.deliverables],
                "aliases": list(n.aliases),
                "seed": n.seed,
            }
            for n in rt.registry.networks
        ]
        if as_json:
            print_json(rows)
            return
        print_table(
            "Nätverk",
            [
                "nyckel",
                "namn",
                "möten/år",
                "veckodag",
                "skickar lista",
                "protokoll kallas",
                "alla kommuner",
                "leveranser",
            ],
            [
                [
                    r["key"],
                    r["name"],
                    r["min_meetings_per_year"],
                    WEEKDAY_TEXT.get(r["meeting_weekday"] or "", "-"),
                    SENDER_TEXT.get(r["list_and_dates_sent_by"], r["list_and_dates_sent_by"]),
                    r["minutes_name"],
                    "ja" if r["all_municipalities_represented"] else "nej",
                    len(r["deliverables"]),
                ]  # fmt: skip
                for r in rows
            ],
        )


@app.command()
def members(ctx: typer.Context, network: str, as_of: AsOfOption = None, as_json: JsonOption = False) -> None:
    """The member list in force."""
    from registry import queries

    rt = _runtime(ctx)
    with reported_errors(rt):
        key = rt.network_key(network)
        today = rt.today(as_of)
        with rt.reader().connect() as connection:
            rows = queries.members_in_force(connection, key, today)
        if as_json:
            print_json(rows)
            return
        print_table(f"Medlemmar {key} per {today}", ["namn", "e-post", "kommun", "roll"],
                    [[r["name"], r["email"], r["municipality"], ROLE_TEXT.get(r["role"], r["role"])] for r in rows])  # fmt: skip


@app.command()
def meetings(ctx: typer.Context, network: str, year: YearOption = None, as_of: AsOfOption = None,
             as_json: JsonOption = False) -> None:  # fmt: skip
    """The meetings, planned, held and cancelled."""
    from registry import queries

    rt = _runtime(ctx)
    with reported_errors(rt):
        key = rt.network_key(network)
        with rt.reader().connect() as connection:
            rows = queries.meetings(connection, key, year, rt.today(as_of))
        if as_json:
            print_json(rows)
            return
        print_table(f"Möten {key}", ["datum", "start", "plats", "läge", "protokoll"],
                    [[r["date"], (r["start"] or "").replace(":", "."), r["place"], MEETING_STATUS_TEXT.get(r["status"], r["status"]),
                      "ja" if r["has_minutes"] else "-"] for r in rows])  # fmt: skip


@app.command()
def minutes(
    ctx: typer.Context,
    network: Annotated[str | None, typer.Argument()] = None,
    year: YearOption = None,
    get: Annotated[int | None, typer.Option("--get", help="Save the original document of this minutes ID.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Where --get writes the document.")] = None,
    as_json: JsonOption = False,
) -> None:
    """The minutes on file; --get ID --out FILE saves the original document."""
    from registry import queries

    rt = _runtime(ctx)
    with reported_errors(rt):
        if get is not None:
            if out is None:
                raise UsageError("--get needs --out FILE")
            with rt.reader().connect() as connection:
                filename, size = queries.save_minutes_document(connection, get, out)
            print(f"{filename} ({size} bytes) -> {out}")
            return
        if network is None:
            raise UsageError("give a NETWORK, or --get ID --out FILE")
        key = rt.network_key(network)
        with rt.reader().connect() as connection:
            rows = queries.minutes(connection, key, year)
        if as_json:
            print_json(rows)
            return
        print_table(f"Protokoll och minnesanteckningar {key}", ["id", "mötesdatum", "fil", "inkom", "närvarande"],
                    [[r["id"], r["meeting_date"], r["filename"], local_time_text(r["received"], rt.tz),
                      ", ".join(r["municipalities_present"])]
                     for r in rows])  # fmt: skip


STATE_STYLE = {"ok": "green", "open": "cyan", "overdue": "red", "at_risk": "yellow", "breach": "magenta"}


@app.command()
def status(
    ctx: typer.Context,
    network: Annotated[str | None, typer.Option("--network", help="Only this network.")] = None,
    as_of: AsOfOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every obligation of every network and its state."""
    from registry.status import status_findings

    rt = _runtime(ctx)
    with reported_errors(rt):
        keys = [rt.network_key(network)] if network else None
        today = rt.today(as_of)
        findings = status_findings(rt, today, keys)
        if as_json:
            print_json([f.as_json() for f in findings])
            return
        print_table(
            f"Status per {today}",
            ["nätverk", "skyldighet", "läge", "senast", "detalj"],
            [
                [
                    f.network,
                    OBLIGATION_TEXT.get(f.obligation.value, f.obligation.value),
                    STATE_TEXT[f.state.value],
                    f.due.isoformat() if f.due else "-",
                    f.detail,
                ]
                for f in findings
            ],  # fmt: skip
            styles={"läge": {STATE_TEXT[state]: style for state, style in STATE_STYLE.items()}},
        )


@app.command()
def mails(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option("--since", help="Only mails received on or after this date.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Every mail the product has read and what became of it (the audit trail)."""
    from registry import queries

    rt = _runtime(ctx)
    with reported_errors(rt):
        start = None
        if since is not None:
            start = datetime.combine(parse_date_option(since, "--since"), time(0), tzinfo=rt.tz)
        with rt.reader().connect() as connection:
            rows = queries.mails(connection, start)
            health = queries.mailbox_health(connection)
        if as_json:
            print_json(rows)
            return
        print_table("Inlästa mejl", ["id", "inkom", "från", "ämne", "läge", "nätverk", "innehåll"],
                    [[r["id"], local_time_text(r["received"], rt.tz), r["from"], r["subject"],
                      MAIL_STATUS_TEXT.get(r["status"], r["status"]), r["network"],
                      ", ".join(MAIL_KIND_TEXT.get(k, k) for k in r["kinds"])] for r in rows])  # fmt: skip
        for line in health:
            typer.echo(line, err=True)


@app.command()
def review(
    ctx: typer.Context,
    resolve: Annotated[int | None, typer.Option("--resolve", help="Resolve the review item with this mail ID.")] = None,
    network: Annotated[
        str | None, typer.Option("--network", help="With --resolve: the network the mail belongs to.")
    ] = None,
    kind: Annotated[
        list[MailKind] | None, typer.Option("--kind", help="With --resolve: what the mail is (repeatable).")
    ] = None,
    dismiss: Annotated[
        bool, typer.Option("--dismiss", metavar="", help="With --resolve: nothing to register.")
    ] = False,
    note: Annotated[str | None, typer.Option("--note", help="With --resolve: why (kept in the audit trail).")] = None,
    as_json: JsonOption = False,
) -> None:
    """The mails that need a person, with the reason; --resolve ID assigns or dismisses one."""
    from registry import queries

    rt = _runtime(ctx)
    with reported_errors(rt):
        if resolve is None:
            with rt.reader().connect() as connection:
                rows = queries.review_items(connection)
            if as_json:
                print_json(rows)
                return
            print_table("Att granska", ["id", "inkom", "från", "ämne", "varför"],
                        [[r["id"], local_time_text(r["received"], rt.tz), r["from"], r["subject"],
                          review_reason_text(r["reason"])] for r in rows])  # fmt: skip
            return
        from mailbot.review import resolve_review

        if dismiss == bool(network or kind):
            raise UsageError("--resolve needs either --dismiss, or --network KEY with one or more --kind KIND")
        key = rt.network_key(network) if network else None
        result = resolve_review(
            rt, resolve, network=key, kinds=[k.value for k in kind or []], dismiss=dismiss, note=note
        )
        if as_json:
            print_json(result)
        else:
            typer.echo(result["summary"])


def main() -> None:
    app()


# --- every command of `registry`, in one place (STYLE.md 9) -----------------------------------------
# The commands above are registered by their decorators; those of the other modules here, by name, so that the
# installed script has exactly what this table shows (a command must never depend on some other module having
# imported its file).
for _name, _command in (
    ("search", cli_admin.search),
    ("calendar", cli_admin.calendar),
    ("export-person", cli_admin.export_person),
    ("forget", cli_admin.forget),
    ("purge-raw-mail", cli_admin.purge_raw_mail_command),
    ("report", cli_report.report),
    ("publish", cli_publish.publish),
    ("backup", cli_ops.backup_command),
    ("restore", cli_ops.restore_command),
):
    app.command(_name)(_command)

if __name__ == "__main__":
    main()
