"""Which network a mail is about and what kind of mail it is, each decision with its reasons.

Pure: reads a ParsedMail and configuration; never guesses — an unclear case is returned as unclear.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from registry.config import Network, fold
from registry.domain import MailKind

from .types import ParsedMail

AUTO_REPLY_SUBJECT = re.compile(
    r"^\s*(automatiskt svar|autosvar|frånvaro|franvaro|frånvarande|out of office|automatic reply|auto[- ]?reply|"
    r"abwesenheitsnotiz|ej på plats|semester)\b",
    re.IGNORECASE,
)
BOUNCE_SENDERS = re.compile(
    r"^(mailer-daemon|postmaster|microsoftexchange[0-9a-f]*|no-?reply|noreply|bounce[s]?)([+@.-]|$)", re.I
)

MINUTES_WORDS = (
    "protokoll",
    "minnesanteckning",
    "minnesant",
    "mötesanteckning",
    "motesanteckning",
    "anteckningar från",
)
MEMBER_WORDS = (
    "medlemslista", "medlemsförteckning", "medlemsforteckning", "förteckning", "forteckning", "deltagarlista",
    "deltagarförteckning", "deltagare", "medlemmar", "ledamöter", "ledamoter", "kontaktlista", "sändlista", "nätverksmedlemmar",
)  # fmt: skip
DATES_WORDS = (
    "mötesdatum", "motesdatum", "datum", "mötestider", "motestider", "mötesplan", "motesplan", "träffar", "traffar",
    "plats och tid", "terminsplanering", "mötesplanering", "planering", "mötestillfällen",
)  # fmt: skip
REVISION_WORDS = ("uppdragsbeskrivning", "reviderat uppdrag", "revidering av uppdrag", "reviderad uppdrag")
FORWARD_PREFIX = re.compile(r"^\s*((vb|fw|fwd|vs|wg)\s*:\s*)", re.I)
REPLY_PREFIX = re.compile(r"^\s*((sv|re|aw|antw)\s*:\s*)", re.I)


@dataclass(frozen=True)
class NetworkChoice:
    network: str | None
    reasons: tuple[str, ...]
    ambiguous: tuple[str, ...] = ()  # candidates when no single network could be chosen
    also_named: tuple[str, ...] = ()  # other networks the deciding text names (the sender's membership settled it)


@functools.lru_cache(maxsize=1024)
def _word_pattern(needle: str) -> re.Pattern[str]:
    # "rektorsnätverkets träff", "elevhälsans datum": a longer name also in the genitive ("SKIS" + s is "skiss").
    genitive = "s?" if len(needle) >= 6 else ""
    return re.compile(rf"(?<![0-9a-z]){re.escape(needle)}{genitive}(?![0-9a-z])")


def _contains_word(haystack: str, needle: str) -> bool:
    # The substring test first: most needles are not in the text at all, and it is much cheaper than the pattern.
    return needle in haystack and _word_pattern(needle).search(haystack) is not None


_FoldedAliases = tuple[tuple[str, tuple[str, ...]], ...]
_ALIASES: dict[tuple[int, ...], tuple[tuple[Network, ...], _FoldedAliases, re.Pattern[str]]] = {}


def _folded_aliases(networks: Sequence[Network]) -> tuple[_FoldedAliases, re.Pattern[str]]:
    """Each network's key and folded names, and one pattern that finds any of them as `_contains_word` does, once
    per configuration (keyed by identity: the models hold dicts, so they do not hash; the entry keeps them alive,
    so an id is never reused for other networks)."""
    key = tuple(id(n) for n in networks)
    if key not in _ALIASES:
        if len(_ALIASES) > 16:
            _ALIASES.clear()
        folded = tuple((n.key, tuple(fold(a) for a in (n.key, n.name, *n.aliases))) for n in networks)
        needles = sorted({alias for _, aliases in folded for alias in aliases}, key=len, reverse=True)
        any_alias = re.compile(
            r"(?<![0-9a-z])(?:"
            + "|".join(re.escape(needle) + ("s?" if len(needle) >= 6 else "") for needle in needles)
            + r")(?![0-9a-z])"
        )
        _ALIASES[key] = (tuple(networks), folded, any_alias)
    return _ALIASES[key][1], _ALIASES[key][2]


def aliases_in(text: str, networks: Sequence[Network]) -> set[str]:
    """Network keys whose name, key or an alias occurs in `text` as whole words (case and å/ä/ö folded)."""
    folded = fold(text)
    aliases_of, any_alias = _folded_aliases(networks)
    if any_alias.search(folded) is None:
        return set()  # most lines name no network: one search instead of one per alias
    return {key for key, aliases in aliases_of if any(_contains_word(folded, alias) for alias in aliases)}


@functools.lru_cache(maxsize=64)
def _folded_words(words: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(fold(word) for word in words)


def has_any(text: str, words: Iterable[str]) -> bool:
    folded = fold(text)
    return any(word in folded for word in _folded_words(tuple(words)))


READ_RECEIPT_SUBJECT = re.compile(r"^\s*(läst|last|read|ej läst|not read|oläst|olast|lu|gelesen)\s*:", re.IGNORECASE)


def is_disposition_notification(mail: ParsedMail) -> str | None:
    """The reason this is a read receipt (RFC 8098 message disposition notification, Outlook's "Läst:"), or None."""
    content_type = (mail.header("content-type") or "").lower().replace('"', "")
    if content_type.startswith("multipart/report") and "report-type=disposition-notification" in content_type:
        return "read receipt (RFC 8098 disposition notification)"
    if READ_RECEIPT_SUBJECT.match(mail.subject or "") and not mail.attachments and not mail.calendar_parts:
        return f"subject {mail.subject!r} is a read receipt"
    return None


def is_auto_reply(mail: ParsedMail, weak: bool = True) -> str | None:
    """The reason this is an automatic reply (RFC 3834 and Outlook's habits), or None.

    The strong signals (Auto-Submitted: auto-replied, X-Autoreply, an out-of-office subject) name a reply; the weak
    ones (Auto-Submitted: auto-generated, X-Auto-Response-Suppress) are also set by newsletters and mail systems,
    so a caller checks bulk mail first and the weak signals after it (`weak=False` leaves them out)."""
    if (why := is_disposition_notification(mail)) is not None:
        return why
    auto = (mail.header("auto-submitted") or "").strip().lower()
    if auto.startswith("auto-replied"):
        return f"Auto-Submitted: {auto}"
    for header in ("x-autoreply", "x-autorespond", "x-auto-response"):
        if mail.header(header):
            return f"{header} header"
    if AUTO_REPLY_SUBJECT.search(mail.subject or ""):
        return f"subject {mail.subject!r} is an out-of-office reply"
    if not weak:
        return None
    if auto and not auto.startswith("no"):
        return f"Auto-Submitted: {auto}"
    suppress = (mail.header("x-auto-response-suppress") or "").lower()
    if "all" in suppress or "oof" in suppress:
        return f"X-Auto-Response-Suppress: {suppress}"
    return None


def is_bulk(mail: ParsedMail) -> str | None:
    """The reason this is bulk mail, a mailing list or a delivery report, or None."""
    if mail.is_delivery_report:
        return "delivery status report (RFC 3464)"
    precedence = (mail.header("precedence") or "").strip().lower()
    if precedence in ("bulk", "list", "junk"):
        return f"Precedence: {precedence}"
    for header in ("list-id", "list-unsubscribe", "list-post", "x-loop"):
        if mail.header(header):
            return f"{header} header"
    return_path = mail.header("return-path")
    if return_path is not None and return_path.strip() in ("<>", ""):
        return "empty Return-Path (a bounce)"
    local = (mail.sender_email or "").split("@", 1)[0]
    if BOUNCE_SENDERS.match(local):
        return f"sender {mail.sender_email} is a mail system"
    return None


def choose_network(
    mail: ParsedMail,
    networks: Sequence[Network],
    filenames: Sequence[str],
    calendar_text: str,
    reply_to_network: str | None,
    sender_networks: Sequence[str],
) -> NetworkChoice:
    """The network a mail is about. Tiers, strongest first: the subject, file names, calendar text, the body;
    then a reply to our own mail; then the sender's only membership. Two networks in the deciding tier is unclear."""
    subject = FORWARD_PREFIX.sub("", REPLY_PREFIX.sub("", mail.subject or ""))
    forwarded_subject = mail.forwarded.subject if mail.forwarded and mail.forwarded.subject else ""
    tiers = (
        ("subject", f"{subject} {forwarded_subject}"),
        ("attachment file name", " ".join(filenames)),
        ("calendar invitation", calendar_text),
        ("text", mail.body_text),
    )
    for where, text in tiers:
        found = aliases_in(text, networks) if text.strip() else set()
        if len(found) == 1:
            key = next(iter(found))
            return NetworkChoice(key, (f"{where} names network {key}",))
        if len(found) > 1:
            # A sender who belongs to exactly one of the named networks settles it.
            mine = found & set(sender_networks)
            if len(mine) == 1:
                key = next(iter(mine))
                return NetworkChoice(
                    key,
                    (f"{where} names {', '.join(sorted(found))}; sender belongs only to {key}",),
                    also_named=tuple(sorted(found - {key})),
                )
            return NetworkChoice(
                None, (f"{where} names several networks: {', '.join(sorted(found))}",), tuple(sorted(found))
            )
    if reply_to_network:
        return NetworkChoice(reply_to_network, (f"reply to our mail about network {reply_to_network}",))
    unique = sorted(set(sender_networks))
    if len(unique) == 1:
        return NetworkChoice(unique[0], (f"no network named; the sender belongs only to {unique[0]}",))
    if unique:
        return NetworkChoice(None, (f"no network named and the sender belongs to {', '.join(unique)}",), tuple(unique))
    return NetworkChoice(None, ("no network named and the sender is not in any member list",))


def reply_to_own_mail(
    mail: ParsedMail, own_domain: str, own_networks: Mapping[str, str | None]
) -> tuple[bool, str | None]:
    """Whether the mail answers one of ours (RFC 5322 In-Reply-To/References), and that mail's network."""
    ids = [mail.in_reply_to] if mail.in_reply_to else []
    ids += list(mail.references)
    for message_id in ids:
        if message_id in own_networks:
            return True, own_networks[message_id]
        if message_id.lower().endswith("@" + own_domain.lower()):
            return True, None
    return False, None


def is_reply_subject(mail: ParsedMail) -> bool:
    """Whether the subject is a reply's ("SV:", "RE:", "AW:"): it then names the mail answered, not this one."""
    return REPLY_PREFIX.match(mail.subject or "") is not None


def kind_words(mail: ParsedMail, filenames: Sequence[str], subject: bool = True) -> set[MailKind]:
    """Kinds the subject and file names announce (what the sender says the mail is); `subject=False` reads the
    file names only."""
    said_subject = FORWARD_PREFIX.sub("", REPLY_PREFIX.sub("", mail.subject or "")) if subject else ""
    if subject and mail.forwarded and mail.forwarded.subject:
        said_subject += " " + mail.forwarded.subject
    said = f"{said_subject} {' '.join(filenames)}"
    kinds = set()
    if has_any(said, MINUTES_WORDS):
        kinds.add(MailKind.MINUTES)
    if has_any(said, MEMBER_WORDS):
        kinds.add(MailKind.MEMBER_LIST)
    if has_any(said, DATES_WORDS):
        kinds.add(MailKind.MEETING_DATES)
    return kinds
