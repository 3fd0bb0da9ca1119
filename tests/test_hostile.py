"""Issue 13: a real `mailbot poll` over the hostile corpus (tests/hostile_corpus.py) against Dovecot, both engines.

The promise: the pass finishes on its own with exit 0; every mail is in `registry mails` exactly once; each
mail that could not be read is in review with a reason; nothing is written outside the product's directories;
no mail goes to an address smuggled in through a header; no /etc/passwd content appears anywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hostile_corpus import SMUGGLED, ZIP_SLIP_NAME, hostile_mails

if TYPE_CHECKING:
    from servers import DovecotServer


def run(env: dict[str, str], cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=900)


def files_under(root: Path) -> set[Path]:
    return {path for path in root.rglob("*") if path.is_file()}


def test_poll_over_the_hostile_corpus_accounts_for_every_mail_once(
    dovecot: DovecotServer, tmp_path: Path, database_url: str
) -> None:
    mails = hostile_mails()
    uids = {dovecot.append(raw): name for name, raw in mails}
    work = tmp_path / "work"
    work.mkdir()
    outbox = tmp_path / "outbox"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_")}
    env.update(dovecot.imap_env())
    env.update(MAILBOT_DATABASE__URL=database_url, MAILBOT_SMTP__DIRECTORY=str(outbox))
    before = files_under(tmp_path)

    done = run(env, work, "mailbot", "poll", "--json")

    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, Any] = json.loads(done.stdout)
    assert report["new"] == len(mails)
    listed = run(env, work, "registry", "mails", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert sorted(row["uid"] for row in rows) == sorted(uids), "every mail exactly once"
    review = run(env, work, "registry", "review", "--json")
    assert review.returncode == 0, review.stderr
    in_review = json.loads(review.stdout)
    assert all(row["reason"] for row in in_review), "each mail in review says why"
    by_uid = {row["uid"]: row for row in rows}
    for uid, name in uids.items():
        assert by_uid[uid]["status"] in ("registered", "review", "ignored"), name
    # Named in the registry by their own Message-ID, however broken their body.
    names = {name: by_uid[uid] for uid, name in uids.items()}
    for name in ("nesting-2000", "parts-5000", "zip-bomb-xlsx", "attachment-30mb", "garbage-csv-400k"):
        assert names[name]["message_id"].strip("<>") == f"hostile-{name}@skovde.se", names[name]
    assert names["attachment-30mb"]["status"] == "review"
    # No mail took its whole budget: the bounded readers refused each bomb before the budget had to.
    assert not [row for row in in_review if "could not be read within" in (row["reason"] or "")]

    # Nothing written outside the product's directories (the SQLite file and the outbox), nothing zip-slipped.
    written = files_under(tmp_path) - before
    allowed = (outbox, tmp_path / "registry.sqlite3")
    assert all(
        any(path == a or a in path.parents for a in allowed) or "registry.sqlite3" in path.name for path in written
    ), written
    assert not files_under(work), "nothing in the working directory"
    for root in (tmp_path, Path("/tmp"), Path.cwd()):
        assert not list(root.glob(f"**/{ZIP_SLIP_NAME}")) if root == tmp_path else not (root / ZIP_SLIP_NAME).exists()

    # No mail to an address smuggled in through a header; no /etc/passwd content anywhere.
    sent = [path.read_bytes() for path in files_under(outbox)] if outbox.exists() else []
    for message in sent:
        head = message.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0].lower()
        assert SMUGGLED.encode() not in head, head[:500]
    passwd = Path("/etc/passwd").read_text().splitlines()[0]
    shown = listed.stdout + review.stdout + done.stdout + done.stderr
    assert passwd not in shown and passwd.encode() not in b"".join(sent)
