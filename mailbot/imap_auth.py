"""OAuth 2.0 access tokens for IMAP XOAUTH2 on Microsoft 365 (client-credentials flow, via MSAL).

Never logs, prints or puts in an error message the client secret or a token.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Protocol

from mailbot.settings import ImapSettings

log = logging.getLogger(__name__)

# The app-only scope for Exchange Online IMAP/POP; the app needs the IMAP.AccessAsApp permission
# and an Exchange service principal with access to the mailbox.
OUTLOOK_SCOPE = "https://outlook.office365.com/.default"
AUTHORITY_HOST = "https://login.microsoftonline.com"


class TokenProvider(Protocol):
    """Anything that hands out a current bearer token (OAuthTokenProvider; a fixed token in tests)."""

    def token(self) -> str: ...


class OAuthError(Exception):
    """No token could be obtained; the message names tenant and client, never the secret."""


class OAuthTokenProvider:
    """Hands out a valid access token, fetching a new one only when the cached one nears expiry.

    MSAL's in-memory token cache does the caching: acquire_token_for_client() returns the cached
    token and asks Entra ID again only when it is about to expire, so one provider should live as
    long as the worker (see shared_token_provider()).
    """

    def __init__(self, tenant: str, client_id: str, client_secret: str, *, authority_host: str = AUTHORITY_HOST):
        self.tenant = tenant
        self.client_id = client_id
        self._client_secret = client_secret
        self._authority = f"{authority_host.rstrip('/')}/{tenant}"
        self._application: Any = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, imap: ImapSettings) -> OAuthTokenProvider:
        missing = [
            name
            for name, value in (
                ("imap.oauth_tenant", imap.oauth_tenant),
                ("imap.oauth_client_id", imap.oauth_client_id),
                ("imap.oauth_client_secret", imap.oauth_client_secret),
            )
            if not value
        ]
        if missing:
            verb = "is" if len(missing) == 1 else "are"
            raise OAuthError(f"imap.auth is xoauth2 but {', '.join(missing)} {verb} not set")
        assert imap.oauth_tenant and imap.oauth_client_id and imap.oauth_client_secret
        return cls(imap.oauth_tenant, imap.oauth_client_id, imap.oauth_client_secret.get_secret_value())

    def __repr__(self) -> str:
        return f"OAuthTokenProvider(tenant={self.tenant!r}, client_id={self.client_id!r})"

    def token(self) -> str:
        """A bearer token for OUTLOOK_SCOPE; raises OAuthError with Entra ID's reason."""
        import requests  # msal's HTTP client; its errors are what a network failure raises

        where = f"client {self.client_id!r} in tenant {self.tenant!r}"
        with self._lock:  # one MSAL application and cache, also when the scheduler runs jobs in threads
            try:
                if self._application is None:
                    import msal

                    # Building the application already talks to the authority (tenant discovery).
                    self._application = msal.ConfidentialClientApplication(
                        self.client_id, authority=self._authority, client_credential=self._client_secret
                    )
                result = self._application.acquire_token_for_client(scopes=[OUTLOOK_SCOPE])
            except (requests.RequestException, ValueError) as error:
                raise OAuthError(f"cannot get an OAuth token for {where}: {self._scrub(str(error))}") from None
        if "access_token" in result:
            log.debug("OAuth token for %s from %s", where, result.get("token_source", "identity provider"))
            return str(result["access_token"])
        description = str(result.get("error_description") or "").splitlines()
        reason = f"{result.get('error', 'unknown error')}: {description[0] if description else 'no description'}"
        raise OAuthError(f"cannot get an OAuth token for {where}: {self._scrub(reason)}")

    def _scrub(self, text: str) -> str:
        return text.replace(self._client_secret, "***") if self._client_secret else text


_shared: dict[tuple[str, str], OAuthTokenProvider] = {}
_shared_lock = threading.Lock()


def shared_token_provider(imap: ImapSettings) -> OAuthTokenProvider:
    """One provider per (tenant, client) for the life of the process, so its token cache is reused."""
    fresh = OAuthTokenProvider.from_settings(imap)
    with _shared_lock:
        existing = _shared.get((fresh.tenant, fresh.client_id))
        if existing is None or existing._client_secret != fresh._client_secret:
            _shared[(fresh.tenant, fresh.client_id)] = existing = fresh
        return existing
