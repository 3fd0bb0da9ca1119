"""Whether the receiving server says a mail is forged: Authentication-Results (RFC 8601), ARC (RFC 8617),
Return-Path alignment, Microsoft 365's spam score, and a request to answer somewhere else.

Pure: reads the headers of a ParsedMail and a policy; never trusts a header the organisation's server did not write.
The From header alone proves nothing, so a mail that would change the registry needs a verdict that is not "fail".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import getaddresses

from registry.config import fold

from .types import ParsedMail

# "svara till min privata adress", "skicka svaret till min privata mejl", "använd min privata e-post": a sender who
# asks that the answer go elsewhere than the address the mail came from.
PRIVATE_ADDRESS_REQUEST = re.compile(
    r"\b(svara|svar|skicka|maila|mejla|använd|anvand|kontakta|nå|na)\b[^.\n]{0,40}\b(min|mitt|mina)\s+"
    r"(privata?|egna?|personliga?|nya)\s+(adress|e-?post|mejl|mail|mejladress|mailadress|e-?postadress)",
    re.IGNORECASE,
)
_METHOD = re.compile(r"(?:^|[;\s])([a-z][a-z0-9_-]*)\s*=\s*([a-z]+)", re.IGNORECASE)
_FAILING = {"fail", "permerror", "softfail"}
_COMPAUTH_FAILING = {"fail", "softfail"}


@dataclass(frozen=True)
class AuthenticationPolicy:
    """Which headers to believe: the authserv-ids of the organisation's own server (empty: the topmost
    Authentication-Results, as Microsoft 365 writes it with no authserv-id), forwarders whose ARC verdict counts,
    and the spam score from which a mail is treated as spam."""

    trusted_authserv_ids: tuple[str, ...] = ()
    trusted_arc_forwarders: tuple[str, ...] = ()
    spam_score_from: int = 5
    known_domains: tuple[str, ...] = ()  # domains a Reply-To may name without doubt (municipalities, federation)


@dataclass(frozen=True)
class AuthenticationVerdict:
    checked: bool  # the server left a verdict (or a spam score) to read
    problems: tuple[str, ...]  # English review reasons: the mail may be forged or wants answers elsewhere
    reasons: tuple[str, ...]  # English: what was read


@dataclass(frozen=True)
class AuthenticationResults:
    authserv_id: str | None
    results: dict[str, str]  # method (lower case) -> result (lower case), the first of each method
    header: str


def parse_authentication_results(value: str) -> AuthenticationResults:
    """One Authentication-Results value (RFC 8601 section 2.2). Microsoft 365 writes no authserv-id: the value
    then opens with a method ("spf=pass ..."). Comments in parentheses are dropped."""
    text = re.sub(r"\([^()]*\)", " ", " ".join(value.split()))
    first, _, rest = text.partition(";")
    authserv_id: str | None = None
    tokens = first.split()
    if re.fullmatch(r"\s*i\s*=\s*\d+\s*", first):  # ARC-Authentication-Results: "i=1; authserv-id; ..."
        head, _, body = rest.partition(";")
        authserv_id = head.split()[0].lower() if head.split() else None
    elif tokens and "=" not in tokens[0]:
        authserv_id, body = tokens[0].lower(), rest
    else:
        body = text
    results: dict[str, str] = {}
    for method, result in _METHOD.findall(body):
        method = method.lower()
        if method in ("smtp", "header", "action", "reason", "policy", "i"):
            continue
        results.setdefault(method, result.lower())
    return AuthenticationResults(authserv_id, results, value)


def _domain(address: str | None) -> str:
    return (address or "").rsplit("@", 1)[-1].strip().strip(">").lower()


def _aligned(a: str, b: str) -> bool:
    """Relaxed alignment (RFC 7489 3.1): the same organisational domain, read as the last two labels."""
    return bool(a and b) and a.split(".")[-2:] == b.split(".")[-2:]


def _trusted_results(mail: ParsedMail, policy: AuthenticationPolicy) -> AuthenticationResults | None:
    headers = [value for name, value in mail.headers if name == "authentication-results"]
    if not headers:
        return None
    if not policy.trusted_authserv_ids:
        return parse_authentication_results(headers[0])  # the topmost: the last server's, Microsoft 365's
    trusted = {item.lower() for item in policy.trusted_authserv_ids}
    for value in headers:  # topmost first: the organisation's own server added its header last
        parsed = parse_authentication_results(value)
        if parsed.authserv_id in trusted:
            return parsed
    return None


def _arc_rescues(mail: ParsedMail, results: AuthenticationResults, policy: AuthenticationPolicy) -> str | None:
    """A trusted forwarder's ARC verdict when our own server found its ARC chain intact (arc=pass)."""
    if not policy.trusted_arc_forwarders or results.results.get("arc") != "pass":
        return None
    forwarders = {item.lower() for item in policy.trusted_arc_forwarders}
    arc = [parse_authentication_results(value) for name, value in mail.headers if name == "arc-authentication-results"]
    for item in arc:  # topmost (highest instance) first
        if item.authserv_id in forwarders:
            if item.results.get("dmarc") == "pass" or item.results.get("dkim") == "pass":
                return item.authserv_id
            return None
    return None


def spam_score(mail: ParsedMail) -> int | None:
    value = (mail.header("x-ms-exchange-organization-scl") or "").strip()
    return int(value) if re.fullmatch(r"-?\d{1,2}", value) else None


def authenticate(mail: ParsedMail, policy: AuthenticationPolicy) -> AuthenticationVerdict:
    """What the receiving server's headers say about where the mail really comes from."""
    problems: list[str] = []
    reasons: list[str] = []
    from_domain = _domain(mail.sender_email)
    results = _trusted_results(mail, policy)
    score = spam_score(mail)
    if results is not None:
        found = results.results
        described = ", ".join(f"{k}={v}" for k, v in found.items() if k in ("spf", "dkim", "dmarc", "compauth"))
        reasons.append(f"authentication results {described or 'without a verdict'}")
        failing = [f"dmarc={found['dmarc']}"] if found.get("dmarc") in _FAILING else []
        if found.get("compauth") in _COMPAUTH_FAILING:
            failing.append(f"compauth={found['compauth']}")
        if not failing and found.get("dmarc") in (None, "none") and found.get("spf") in _FAILING:
            if found.get("dkim") != "pass":
                failing.append(f"spf={found['spf']} and no valid DKIM signature")
        if failing:
            rescued = _arc_rescues(mail, results, policy)
            if rescued:
                reasons.append(f"forwarded by {rescued}, whose ARC verdict passes")
            else:
                problems.append(
                    f"the receiving server could not confirm the sender {mail.sender_email} "
                    f"({', '.join(failing)}): the mail may be forged"
                )
    elif policy.trusted_authserv_ids and any(n == "authentication-results" for n, _ in mail.headers):
        reasons.append("no Authentication-Results from a trusted server; authorised by the From address alone")
    if score is not None and score >= policy.spam_score_from:
        problems.append(f"the receiving server scored the mail as spam (SCL {score})")
    elif score is not None:
        reasons.append(f"spam score SCL {score}")
    return_path = mail.header("return-path")
    if return_path and return_path.strip() not in ("<>", ""):
        envelope = _domain(getaddresses([return_path])[0][1] if getaddresses([return_path]) else return_path)
        if envelope and from_domain and not _aligned(envelope, from_domain):
            problems.append(
                f"the envelope sender (Return-Path {envelope}) is not the domain of the From address {from_domain}"
            )
    problems.extend(_reply_elsewhere(mail, policy, from_domain))
    checked = results is not None or score is not None
    if not checked:
        reasons.append("the mail carries no authentication verdict; authorised by the From address alone")
    return AuthenticationVerdict(checked, tuple(problems), tuple(reasons))


def _reply_elsewhere(mail: ParsedMail, policy: AuthenticationPolicy, from_domain: str) -> list[str]:
    problems = []
    reply_to = mail.header("reply-to")
    if reply_to:
        known = {from_domain, *(d.lower() for d in policy.known_domains)}
        for _name, address in getaddresses([reply_to]):
            domain = _domain(address)
            if domain and not any(domain == d or domain.endswith("." + d) for d in known if d):
                problems.append(f"Reply-To asks for answers to another address ({address.lower()})")
                break
    if PRIVATE_ADDRESS_REQUEST.search(fold(mail.body_text)) or PRIVATE_ADDRESS_REQUEST.search(mail.body_text):
        problems.append("the sender asks for answers to a private address")
    return problems
