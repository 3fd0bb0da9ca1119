"""The dead-man's switch: after each poll pass the active worker pings a Healthchecks.io-style URL.

A good pass GETs `monitoring.ping_url`; a failed pass POSTs the error to `<ping_url>/fail` (the Healthchecks
convention), so a stop or a run of failures is noticed outside the machine. A ping must never fail or delay
a pass beyond `monitoring.ping_timeout`: an unreachable URL or an error status logs one warning, nothing more.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from urllib.parse import urlsplit, urlunsplit

from mailbot.settings import MonitoringSettings

log = logging.getLogger("mailbot.monitoring")
MAX_BODY = 10_000  # Healthchecks keeps the first 10 kB of a ping's body


def fail_url(url: str) -> str:
    """`url` with `/fail` appended to its path (a query string stays at the end)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/fail"))


def ping(settings: MonitoringSettings, failure: str | None = None) -> bool:
    """Ping the configured URL (nothing if none): success after a good pass, `/fail` with `failure` as the
    body after a failed one. True when the endpoint answered 2xx."""
    if not settings.ping_url:
        return False
    url = fail_url(settings.ping_url) if failure is not None else settings.ping_url
    body = failure.encode("utf-8")[:MAX_BODY] if failure is not None else None
    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET",
                                     headers={"User-Agent": "mailbot"})  # fmt: skip
    # The ping URL's path is its secret (anyone who has it can ping): logs name the host only.
    host = urlsplit(url).netloc
    try:
        with urllib.request.urlopen(request, timeout=settings.ping_timeout) as response:  # noqa: S310 - configured URL
            response.read(1024)
            return True
    except urllib.error.HTTPError as error:
        log.warning("dead-man's switch: %s answered HTTP %s to the %s ping", host, error.code,
                    "fail" if failure is not None else "success")  # fmt: skip
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        log.warning("dead-man's switch: cannot ping %s: %s", host, reason)
    return False
