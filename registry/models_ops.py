"""Operational tables (not registry facts): the worker lease, unfinished mail readings, the public site's build
and upload state. Kept apart from models.py.

Portable SQL only (SQLite and PostgreSQL). Created by migrations 0003_worker_lease, 0008_mail_attempt and 0009_publication.
"""

from datetime import datetime

from sqlmodel import Field

from registry.models import Table


class WorkerLease(Table, table=True):
    """Who may do the work named `name` (poll, send, remind) until `expires_at`; renewed by its holder every tick."""

    __tablename__ = "worker_lease"
    name: str = Field(primary_key=True, max_length=64)
    holder: str = Field(max_length=255)  # hostname:pid:uuid of the process that holds it
    acquired_at: datetime  # when this holder took it over (unchanged by renewals), UTC
    expires_at: datetime  # UTC; after this moment any other process may take it over


class MailAttempt(Table, table=True):
    """A mail whose reading has started but not finished (quarantine of poison mail, migration 0008).

    Committed before the mail is read and deleted in the transaction that records it: a row that outlives its
    pass means the whole service died while reading that mail (out-of-memory killer, a crash, power loss).
    """

    __tablename__ = "mail_attempt"
    sha256: str = Field(primary_key=True, max_length=64)  # the same key as inbound_mail.sha256
    folder: str = Field(max_length=255)
    uid: int
    attempts: int = 0
    last_attempt: datetime  # UTC


class SiteState(Table, table=True):
    """The public site (`registry publish`): the last build, and the upload to the web server with its failure
    streak (one alert per streak, like a failing mailbox). One row, name "site"."""

    __tablename__ = "site_state"
    name: str = Field(primary_key=True, max_length=32)
    last_build: datetime | None = None  # UTC
    build_id: str | None = Field(default=None, max_length=64)  # the directory name of the build in place
    upload_pending: bool = False  # a build since the last good upload (retried every pass)
    last_upload: datetime | None = None  # the last good upload, UTC
    last_failure: datetime | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    alert_sent: bool = False
