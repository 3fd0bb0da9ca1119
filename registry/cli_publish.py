"""`registry publish`: the public site of the minutes, and the queue of minutes waiting for a person's approval.
Registered in the command table of registry/cli.py. SQLModel and the site's builder (Jinja2) are imported when
the command runs."""

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from registry.domain import PublicationDecision
from registry.runtime import JsonOption, Runtime, UsageError, context_runtime, print_json, print_table, reported_errors


def publish(
    ctx: typer.Context,
    out: Annotated[
        Path | None, typer.Option("--out", help="Build the site here instead of publication.directory.")
    ] = None,
    show_pending: Annotated[
        bool, typer.Option("--pending", help="List the minutes waiting for approval; build nothing.")
    ] = False,
    approve: Annotated[
        list[int] | None, typer.Option("--approve", help="Approve these minutes IDs for publication (repeatable).")
    ] = None,
    approve_all: Annotated[bool, typer.Option("--approve-all", help="Approve every minutes waiting.")] = False,
    withhold: Annotated[
        int | None, typer.Option("--withhold", help="Do not publish this minutes ID (needs --note).")
    ] = None,
    note: Annotated[str | None, typer.Option("--note", help="With --withhold: why (kept for the admin).")] = None,
    no_upload: Annotated[
        bool, typer.Option("--no-upload", help="Build, but do not run publication.upload_command.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Build the public site of the minutes (atomically), or work the approval queue (--pending, --approve ID,
    --approve-all, --withhold ID --note TEXT)."""
    from registry.publication import publish_site

    rt = context_runtime(ctx)
    with reported_errors(rt):
        actions = sum([show_pending, bool(approve), approve_all, withhold is not None])
        if actions > 1:
            raise UsageError("use one of --pending, --approve, --approve-all, --withhold at a time")
        if note is not None and withhold is None:
            raise UsageError("--note goes with --withhold ID")
        if actions and (out is not None or no_upload):
            raise UsageError("--out and --no-upload go with a build (no queue option)")
        now = datetime.now(UTC)
        if show_pending:
            _print_pending(rt, as_json)
            return
        if approve or approve_all or withhold is not None:
            _decide(rt, now, approve or [], approve_all, withhold, note, as_json)
            return
        report = publish_site(rt, now, out, do_upload=not no_upload)
        if as_json:
            print_json(report.as_json())
        else:
            published = ", ".join(f"{key} {count}" for key, count in report.published.items()) or "none"
            typer.echo(f"{report.files} files -> {report.directory} (minutes published: {published}; "
                       f"{len(report.first_time)} new, {report.pending} waiting for approval)")  # fmt: skip
            if report.uploaded:
                typer.echo("uploaded (publication.upload_command)")
        if report.upload_error:
            typer.echo(f"error: the site was built, but the upload failed: {report.upload_error}", err=True)
            raise typer.Exit(1)


def _print_pending(rt: Runtime, as_json: bool) -> None:
    from sqlmodel import Session

    from registry.publication import pending

    with Session(rt.reader()) as session:
        rows = pending(session, rt.registry)
    if as_json:
        print_json([row.as_json() for row in rows])
        return
    print_table("Väntar på godkännande för publicering", ["id", "network", "meeting_date", "filename", "received"],
                [[r.id, r.network, r.meeting_date.isoformat(), r.filename, r.received.astimezone(rt.tz)
                  .isoformat(timespec="minutes")] for r in rows])  # fmt: skip
    if not rows:
        typer.echo("Inga minnesanteckningar väntar på godkännande.", err=True)


def _decide(rt: Runtime, now: datetime, ids: list[int], every: bool, withhold: int | None, note: str | None,
            as_json: bool) -> None:  # fmt: skip
    from sqlmodel import Session

    from registry.publication import decide, pending

    if withhold is not None and not (note and note.strip()):
        raise UsageError("--withhold needs --note TEXT (why it is not published)")
    with Session(rt.engine(create=False)) as session:
        if withhold is not None:
            decided = decide(session, rt.registry, [withhold], PublicationDecision.WITHHELD, now, note)
            verb = "withheld"
        else:
            chosen = [row.id for row in pending(session, rt.registry)] if every else ids
            decided = decide(session, rt.registry, chosen, PublicationDecision.APPROVED, now)
            verb = "approved"
        session.commit()
    if as_json:
        print_json({verb: decided})
        return
    listed = ", ".join(str(i) for i in decided) or "none"
    typer.echo(f"{verb}: {listed}" + ("; `registry publish` (or the worker) builds the site" if decided else ""))
