"""A forged sender on the real Dovecot: the mail as Microsoft 365 stamps it (dmarc=fail, compauth=fail, SCL 5) is
APPENDed, `mailbot poll` runs as a subprocess, and the mail goes to review with no receipt at the real aiosmtpd,
while the genuine list before it is registered and receipted (each test on SQLite and on PostgreSQL)."""

from __future__ import annotations

import email
import json
from collections.abc import Callable
from email.policy import default as default_policy
from pathlib import Path
from typing import TYPE_CHECKING

from test_intake_imap import CORPUS, cli_env, registry_json, run_cli

if TYPE_CHECKING:
    from servers import DovecotServer, SmtpServer

GENUINE = CORPUS / "001_skis-medlemmar-xlsx-titelrad.eml"
FORGED = CORPUS / "068_skis-forfalskad-avsandare-ny-lista.eml"


def test_forged_chair_list_goes_to_review_without_a_receipt(
    dovecot: DovecotServer, smtp_server: Callable[..., SmtpServer], tmp_path: Path, database_url: str
) -> None:
    smtp = smtp_server("plain")
    dovecot.append(GENUINE.read_bytes())
    dovecot.append(FORGED.read_bytes())
    env = cli_env(dovecot, tmp_path, database_url, MAILBOT_SMTP__HOST=smtp.host, MAILBOT_SMTP__PORT=str(smtp.port),
                  MAILBOT_SMTP__STARTTLS="false", MAILBOT_RECEIPTS__MAX_AGE_DAYS="100000")  # fmt: skip
    del env["MAILBOT_SMTP__DIRECTORY"]

    done = run_cli(env, tmp_path, "mailbot", "poll", "--json")

    assert done.returncode == 0, done.stderr
    forged_from = email.message_from_bytes(FORGED.read_bytes(), policy=default_policy)["From"].addresses[0].addr_spec
    genuine_from = email.message_from_bytes(GENUINE.read_bytes(), policy=default_policy)["From"].addresses[0].addr_spec
    review = registry_json(env, tmp_path, "review")
    assert [row["from"] for row in review] == [forged_from]
    assert "forged" in review[0]["reason"] and "SCL 5" in review[0]["reason"]
    listed = run_cli(env, tmp_path, "registry", "members", "skis", "--json")
    assert listed.returncode == 0, listed.stderr
    emails = {m["email"] for m in json.loads(listed.stdout)}
    assert forged_from in emails and "mikael.strand@skovde.se" not in emails, "the genuine list stays in force"
    # The genuine list got its receipt through the real SMTP server; the claimed sender of the forgery none.
    recipients = [rcpt for message in smtp.messages for rcpt in message.rcpt_tos]
    assert genuine_from in recipients
    assert forged_from not in recipients
