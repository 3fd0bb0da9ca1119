"""`registry backup` and `registry restore`: operations commands. Registered in the command table of registry/cli.py.
registry/backup.py (SQLAlchemy) is imported when a command runs."""

from pathlib import Path
from typing import Annotated

import typer

from registry.runtime import Runtime, reported_errors


def backup_command(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Where to write the copy (replaced if it exists).")],
) -> None:
    """A consistent copy of the registry, safe while the worker runs (SQLite: one file; PostgreSQL: pg_dump)."""
    from registry import backup as backup_ops

    rt: Runtime = ctx.obj
    with reported_errors(rt):
        size = backup_ops.backup(rt.engine(create=False), out)
        typer.echo(f"{out} ({size} bytes)")


def restore_command(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A file written by `registry backup` (PostgreSQL: a pg_dump archive).")],
    yes: Annotated[bool, typer.Option("--yes", metavar="", help="Replace an existing registry.")] = False,
) -> None:
    """Put a backup back as the registry (stop the worker first). Refuses to replace a registry without --yes."""
    from registry import backup as backup_ops

    rt: Runtime = ctx.obj
    with reported_errors(rt):
        target = backup_ops.restore(rt.settings.database.url, file, yes=yes)
        typer.echo(f"{file} -> {target}")
