"""Wakes the worker when new mail arrives: IMAP IDLE (RFC 2177) on a connection of its own, in a thread.

Never fetches, marks or records anything (the folder is only EXAMINEd); it only tells the worker to poll now.
When the server has no IDLE, or IDLE keeps failing, the worker's poll schedule is all there is.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from mailbot.settings import ImapSettings
from mailbot.sources import ImapSource
from registry.errors import ExpectedError

log = logging.getLogger("mailbot.idle")


class IdleWatcher:
    """A daemon thread that calls `on_new_mail` whenever the folder announces new mail.

    1. Connect and log in like the intake does (same settings, TLS and OAuth), then ask for IDLE; a server
       without it ends the thread with one log line (polling goes on).
    2. Wake the worker once after every (re)connection: mail may have arrived while nobody was idling.
    3. IDLE until EXISTS, then wake the worker and IDLE again; every `idle_renew_minutes` (below the 29 minutes
       of RFC 2177) end IDLE and start it anew, so neither the server nor a NAT drops the connection.
    4. A lost connection or a refused command: log one line, wait `idle_retry_seconds`, go back to 1.
    """

    def __init__(self, settings: ImapSettings, on_new_mail: Callable[[], None]) -> None:
        self.settings = settings
        self.on_new_mail = on_new_mail
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="imap-idle", daemon=True)
        self.supported: bool | None = None  # None until the server has said whether it offers IDLE

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        renew_seconds = self.settings.idle_renew_minutes * 60
        while not self._stop.is_set():
            try:
                with ImapSource(self.settings) as source:
                    self.supported = source.supports_idle()
                    if not self.supported:
                        log.info("IMAP server offers no IDLE: new mail is read at the poll interval")
                        return
                    log.info("waiting for new mail with IMAP IDLE on folder %r", self.settings.folder)
                    self.on_new_mail()
                    while not self._stop.is_set():
                        if source.wait_for_new_mail(renew_seconds, self._stop):
                            log.debug("IMAP IDLE: new mail announced")
                            self.on_new_mail()
            except ExpectedError as error:  # the mailbox, its TLS or its login: as a failing poll would say
                log.warning("IMAP IDLE stopped, retrying in %gs: %s", self.settings.idle_retry_seconds, error)
            except Exception:  # a bug here must not end the wake-ups for good; polling goes on meanwhile
                log.exception("IMAP IDLE failed unexpectedly, retrying in %gs", self.settings.idle_retry_seconds)
            self._stop.wait(self.settings.idle_retry_seconds)
