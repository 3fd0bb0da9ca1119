"""`registry forget` on the demo registry leaves nothing of the person: not the address, not the full name, not the
first name a receipt greeted her with ("Hej Sofia!"). SQLite: the file's bytes; PostgreSQL: every row of every
table cast to text. `export-person` lists what forget touches, and `forget --dry-run` changes nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

ADDRESS = "sofia.andersson@mariestad.se"
TRACES = ("sofia.andersson", "Sofia Andersson", "Hej Sofia")


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    script = shutil.which(args[0])
    assert script is not None
    return subprocess.run([script, *args[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def traces_in_database(cwd: Path, url: str | None) -> dict[str, int]:
    if url is None:
        data = (cwd / "var" / "registry.sqlite3").read_bytes()
        return {trace: data.lower().count(trace.lower().encode()) for trace in TRACES}
    engine = create_engine(url)
    found = dict.fromkeys(TRACES, 0)
    with engine.connect() as connection:
        for table in inspect(connection).get_table_names():
            rows = connection.execute(text(f'SELECT CAST(t AS text) FROM "{table}" AS t')).scalars()
            for row in rows:
                for trace in TRACES:
                    found[trace] += row.lower().count(trace.lower())
    engine.dispose()
    return found


@pytest.fixture(params=["sqlite", "postgres"])
def demo(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_")}
    url = None
    if request.param == "postgres":
        server = request.getfixturevalue("postgres_server")
        name = server.create_database()
        url = server.url(name)
        env["MAILBOT_DATABASE__URL"] = url
    done = run(["mailbot", "demo"], tmp_path, env)
    assert done.returncode == 0, done.stderr
    yield tmp_path, env, url
    if url is not None:
        server.drop_database(name)


def test_forget_leaves_no_address_name_or_greeting(demo) -> None:  # type: ignore[no-untyped-def]
    cwd, env, url = demo
    before = traces_in_database(cwd, url)
    assert all(before.values()), before  # the demo holds all three: her mails, her name, a receipt greeting her

    dry = run(["registry", "forget", ADDRESS, "--dry-run", "--json"], cwd, env)
    assert dry.returncode == 0, dry.stderr
    planned = json.loads(dry.stdout)
    assert planned["dry_run"] is True and planned["erased"] is False and planned["done"]["documents redacted"] >= 1
    assert traces_in_database(cwd, url) == before  # --dry-run changed nothing

    exported = json.loads(run(["registry", "export-person", ADDRESS], cwd, env).stdout)
    assert len(exported["documents_naming"]) == planned["done"]["documents redacted"]
    assert exported["mails_from"] and exported["memberships"]

    done = run(["registry", "forget", ADDRESS, "--yes", "--json"], cwd, env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["done"] == planned["done"]  # exactly what the dry run said
    assert traces_in_database(cwd, url) == dict.fromkeys(TRACES, 0)
