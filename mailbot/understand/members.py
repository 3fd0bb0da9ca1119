"""Member lists ("förteckning på de personer som ingår i nätverket") from tables and mail bodies.

Pure: rows and text in, MemberListResult out; a row it cannot read becomes a RejectedRow, never a guess.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from email_validator import EmailNotValidError, validate_email

from mailbot.understand.documents import extract_text, read_table_rows
from mailbot.understand.types import Attachment, MemberListResult, MemberRow, RejectedRow
from registry.config import MunicipalityIndex, fold
from registry.domain import Role

_HEADER_SEARCH_ROWS = 10
_DEFAULT_FEDERATION_DOMAINS = ("skaraborg.se",)

# --- roles -------------------------------------------------------------------------------------

_VICE_CHAIR = re.compile(r"(?<![a-z])(vice[\s-]*ordf\w*|v\.\s*ordf\w*)")
_CHAIR = re.compile(r"ordforande|(?<![a-z])ordf(?![a-z])|(?<![a-z])chair")
_SECRETARY = re.compile(r"sekreterare|(?<![a-z])sekr(?![a-z])|(?<![a-z])secretary")
_PRESIDIUM = re.compile(r"presidi")
_SCHOOL_CHIEF = re.compile(r"skolchef|utbildningschef|forvaltningschef")

# Folded words that name a role or a kind of member; they are never part of a person's name.
_ROLE_WORDS = frozenset(
    "ordforande ordf vice sekreterare sekr presidium presidiet presidieledamot skolchef "
    "utbildningschef forvaltningschef ledamot ledamoter deltagare representant medlem medlemmar rektor "
    "bitradande ersattare adjungerad suppleant".split()
)


def parse_role(text: str | None) -> Role:
    """The strongest role named in `text` ("Rektor, ordförande" -> chair); member when none is."""
    folded = fold(text or "")
    vice_chair = bool(_VICE_CHAIR.search(folded))
    # "vice ordförande" must not count as ordförande.
    folded = _VICE_CHAIR.sub(" ", folded)
    if _CHAIR.search(folded):
        return Role.CHAIR
    if _SECRETARY.search(folded):
        return Role.SECRETARY
    if vice_chair or _PRESIDIUM.search(folded):
        return Role.PRESIDIUM
    if _SCHOOL_CHIEF.search(folded):
        return Role.SCHOOL_CHIEF
    return Role.MEMBER


_ROLE_STRENGTH = (Role.CHAIR, Role.SECRETARY, Role.PRESIDIUM, Role.SCHOOL_CHIEF, Role.MEMBER)


def _stronger(first: Role, second: Role) -> Role:
    return min(first, second, key=_ROLE_STRENGTH.index)


# --- person names ------------------------------------------------------------------------------

_NAME_WORD = re.compile(r"[^\W\d_]+(?:[-'’][^\W\d_]+)*\.?")
_PARTICLES = frozenset("von af de van der den la le du di da".split())
_NOT_NAME_WORDS = frozenset(
    "kommun kommuns stad skola forvaltning forvaltningen utbildning skaraborg skaraborgs kommunalforbund "
    "natverk natverket gymnasium namn roll funktion e-post epost mejl mail telefon teams zoom via och "
    "ej franvarande narvarande samt".split()
)
_NOT_NAME_ENDINGS = ("skolan", "gymnasiet", "forvaltningen", "enheten", "kommun", "natverket", "forbund")


def person_name(text: str, municipalities: MunicipalityIndex | None = None) -> str | None:
    """The person's name that `text` is ("Anna Svensson", "Ordförande Anna-Karin af Ekström",
    "Per Ek Skövde" -> "Per Ek"), or None when it reads as anything else."""
    words = text.replace("\u00a0", " ").split()
    while words and fold(words[0]).strip(".:") in _ROLE_WORDS:
        words.pop(0)
    if municipalities is not None and len(words) >= 3 and fold(words[-1]) in ("kommun", "kommuns", "stad"):
        # "Per Ek Skövde kommun": the suffix goes with the municipality removed below.
        words.pop()
    if municipalities is not None and len(words) >= 3:
        # "Per Ek Skövde" / "Skövde Per Ek": a municipality beside a two-word name is not part of it.
        if _is_municipality_word(words[-1], municipalities):
            words.pop()
        elif _is_municipality_word(words[0], municipalities):
            words.pop(0)
    if not 2 <= len(words) <= 5:
        return None
    if municipalities is not None and all(_is_municipality_word(w, municipalities) for w in words):
        return None  # "Skövde Hjo" is two places
    capitalised = 0
    for word in words:
        folded = fold(word)
        if folded in _PARTICLES:
            continue
        if not _NAME_WORD.fullmatch(word) or not word[0].isupper():
            return None
        if folded in _NOT_NAME_WORDS or folded in _ROLE_WORDS or folded.endswith(_NOT_NAME_ENDINGS):
            return None
        capitalised += 1
    return " ".join(words) if capitalised >= 2 else None


def _is_municipality_word(word: str, municipalities: MunicipalityIndex) -> bool:
    return municipalities.match_name(word.strip(".,;:()")) is not None and word[:1].isupper()


# --- e-mail ------------------------------------------------------------------------------------


def _normalise_email(raw: str) -> str | None:
    """The address as email-validator normalises it, lower case; None when it is not valid."""
    candidate = raw.strip().strip("<>()[]").strip()
    if candidate.lower().startswith("mailto:"):
        candidate = candidate[7:]
    if len(candidate) > _MAX_ADDRESS:
        return None  # email-validator refuses it all the same; not kept in the cache below
    return _validated(candidate)


_MAX_ADDRESS = 1000  # longer is no address (RFC 5321: 254)


@functools.lru_cache(maxsize=4096)
def _validated(candidate: str) -> str | None:
    """email-validator's verdict on one address (its IDNA checks are most of what a member list costs); the
    same people's addresses come back in list after list."""
    try:
        checked = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError:
        return None
    return checked.normalized.lower()


def _municipality_of(email: str, stated: Sequence[str | None], municipalities: MunicipalityIndex) -> str | None:
    domain = email.rsplit("@", 1)[1]
    federation = municipalities.federation_domains or _DEFAULT_FEDERATION_DOMAINS
    if any(domain == d or domain.endswith("." + d) for d in federation):
        # Federation staff sit in the network for Skaraborgs kommunalförbund, not for a municipality.
        return None
    for text in stated:
        found = municipalities.match_name(text)
        if found:
            return found
    return municipalities.match_domain(email)


class _Emails:
    """Keeps the first row of each address; later rows with it are rejected."""

    def __init__(self) -> None:
        self.first_row: dict[str, int] = {}

    def duplicate_reason(self, email: str, row_number: int) -> str | None:
        if email in self.first_row:
            return f"e-postadressen {email} finns redan på rad {self.first_row[email]}"
        self.first_row[email] = row_number
        return None


# --- tables ------------------------------------------------------------------------------------


def _header_kind(cell: str) -> str | None:
    """What a heading cell names: name, first, last, email, municipality, role, flag:<role>, or None."""
    if "@" in cell or len(cell) > 60:
        return None
    folded = fold(cell).strip(" :*")
    compact = re.sub(r"[^a-z]", "", folded)
    if not compact:
        return None
    if any(word in compact for word in ("epost", "mejl", "mail")):
        return "email"
    if compact.startswith(("befattning", "titel", "yrke", "tjanst", "arbetstitel")):
        # A job title ("Skolchef" for a principal's own post): the role in the network only when no column says so.
        return "title"
    if compact.startswith(("roll", "funktion", "uppdrag")):
        return "role"
    if compact.startswith(("presidi", "ordforande", "sekreterare")):
        # A column of crosses ("x", "ja") marking who sits in the presidium.
        return "flag:" + parse_role(folded).value
    if compact.startswith(("kommun", "organisation", "arbetsplats", "forvaltning", "huvudman", "skola")):
        return "municipality"
    if compact in ("fornamn", "firstname", "tilltalsnamn"):
        return "first"
    if compact in ("efternamn", "lastname", "surname"):
        return "last"
    if compact.startswith(("namn", "name", "fullstandigtnamn", "fornamnochefternamn", "forochefternamn")):
        return "name"
    if compact in ("ledamot", "deltagare", "medlem", "representant", "kontaktperson", "person"):
        # A column of names headed by what the people are; used only when no "Namn" column exists.
        return "name_by_role"
    return None


def _find_header(rows: list[list[str]]) -> tuple[int, dict[str, list[int]]] | None:
    for index, row in enumerate(rows[:_HEADER_SEARCH_ROWS]):
        columns: dict[str, list[int]] = {}
        for column, cell in enumerate(row):
            kind = _header_kind(cell or "")
            if kind:
                columns.setdefault(kind, []).append(column)
        titles = columns.pop("title", [])
        if titles and "role" not in columns:
            # Without a "Roll" column the job title is all the table says ("Ordförande"); beside one, it is not a role.
            columns["role"] = titles
        by_role = columns.pop("name_by_role", [])
        if by_role and not {"name", "first", "last"} & columns.keys():
            columns["name"] = by_role[:1]
        has_name = "name" in columns or "first" in columns or "last" in columns
        if has_name and "email" in columns:
            return index, columns
    return None


def _cell(row: list[str], column: int) -> str:
    return " ".join((row[column] or "").split()) if column < len(row) else ""


_TRUE_MARKS = frozenset({"x", "ja", "j", "yes", "1", "✓", "✔", "sant", "true"})


def parse_member_table(
    rows: list[list[str]], municipalities: MunicipalityIndex, source: str
) -> MemberListResult | None:
    """A member list from a table (an Excel sheet, a Word table, a CSV file), or None when no
    heading row with at least a name and an e-mail column is found in its first rows."""
    return _parse_table(rows, municipalities, source, _Emails())


def _parse_table(
    rows: list[list[str]], municipalities: MunicipalityIndex, source: str, emails: _Emails
) -> MemberListResult | None:
    header = _find_header(rows)
    if header is None:
        return None
    header_index, columns = header
    members: list[MemberRow] = []
    rejected: list[RejectedRow] = []
    for index in range(header_index + 1, len(rows)):
        row = rows[index]
        row_number = index + 1
        cells = _trim_trailing([_cell(row, c) for c in range(len(row))])
        if not cells:
            continue
        outcome = _table_member(row, columns, municipalities)
        if isinstance(outcome, MemberRow):
            duplicate = emails.duplicate_reason(outcome.email, row_number)
            if duplicate is None:
                members.append(outcome)
                continue
            outcome = duplicate
        rejected.append(RejectedRow(row_number, " | ".join(cells), outcome))
    return MemberListResult(members=tuple(members), rejected=tuple(rejected), source=source)


def _table_member(row: list[str], columns: dict[str, list[int]], municipalities: MunicipalityIndex) -> MemberRow | str:
    """The member of one table row, or the reason it is rejected."""

    def joined(kind: str) -> str:
        return " ".join(v for v in (_cell(row, c) for c in columns.get(kind, [])) if v)

    name_text = joined("name") or " ".join(v for v in (joined("first"), joined("last")) if v)
    # "Anna Svensson (ordf.)" in the name cell: the parenthesis is a role, not part of the name.
    role_text = " ".join([joined("role"), *re.findall(r"\(([^)]*)\)", name_text)])
    name = " ".join(re.sub(r"\([^)]*\)", " ", name_text).split())
    raw_email = joined("email")
    reason = _missing_reason(name, raw_email)
    if reason is not None:
        return reason
    # "Anna Svensson <anna.svensson@skovde.se>" pasted from Outlook into the e-post cell.
    addresses = _ADDRESS.findall(raw_email)
    email = _normalise_email(addresses[0] if len(addresses) == 1 else raw_email)
    if email is None:
        return f"ogiltig e-postadress '{raw_email}'"
    role = parse_role(role_text)
    for kind, flag_columns in columns.items():
        if kind.startswith("flag:") and any(fold(_cell(row, c)) in _TRUE_MARKS for c in flag_columns):
            role = _stronger(role, Role(kind.removeprefix("flag:")))
    stated = [_cell(row, c) for c in columns.get("municipality", [])]
    return MemberRow(name=name, email=email, municipality=_municipality_of(email, stated, municipalities), role=role)


def _trim_trailing(cells: list[str]) -> list[str]:
    end = len(cells)
    while end and not cells[end - 1]:
        end -= 1
    return cells[:end]


def _missing_reason(name: str, raw_email: str) -> str | None:
    if not name and not raw_email:
        return "namn och e-postadress saknas"
    if not name:
        return "namn saknas"
    if not raw_email:
        return "e-postadress saknas"
    return None


# --- plain lines in a mail body ----------------------------------------------------------------

# Something that is meant as an address: "anna@skovde.se", "per.olsson@", "lisa.berg(at)hjo.se".
# Linear time: a match starts only where a run of address characters starts (the lookbehind), and the run is
# taken whole (possessive), so a 400 kB line without "@" is one failed try, not one per position.
_ADDRESS = re.compile(
    r"(?<![^\s<>(),;:|\[\]\"'])(?:mailto:)?[^\s<>(),;:|\[\]\"'@]++(?:@|\s?[(\[]\s?at\s?[)\]]\s?)"
    r"[^\s<>(),;:|\[\]\"']*",
    re.IGNORECASE,
)
MAX_LINE = 1000  # characters: a longer line is no member row (and never reaches a regex)
_SEPARATORS = re.compile(r"\s*(?:[,;\t|()\[\]<>:/]|\s[-–—]\s|[–—]|^-\s)\s*")
_BULLET = re.compile(r"^\s*(?:[-*•·▪–]|\d{1,3}[.)])\s+")
_MAIL_HEADER = re.compile(
    r"^\s*(?:från|from|till|to|kopia|cc|bcc|skickat|sent|datum|date|ämne|subject|svara till|reply-to|"
    r"e-?post|e-?mail|mail|mejl|tel|telefon|mobil|webb|web|www)\s*:",
    re.IGNORECASE,
)
_GREETING = re.compile(
    r"^\s*(?:(?:med\s+)?(?:vänliga|vänlig|varma|bästa|många|soliga)?\s*hälsning(?:ar)?|mvh|vh|"
    r"(?:best|kind)?\s*regards|hälsar)\b|^\s*/\s*[A-ZÅÄÖ]",
    re.IGNORECASE,
)
_FORWARD_MARK = re.compile(r"^\s*-{3,}|^\s*_{5,}|^\s*(?:från|from)\s*:", re.IGNORECASE)
_ROLE_HEADING = re.compile(r"^\s*([^\W\d_][^\W\d_ \-]*(?:\s+[^\W\d_][^\W\d_\-]*){0,2})\s*(?::\s*)?$")
_MAX_HEADING = 80  # characters: "Presidium:", "Övriga ledamöter"


def parse_member_lines(text: str, municipalities: MunicipalityIndex) -> MemberListResult | None:
    """A member list from plain lines of a mail body ("Anna Svensson, anna.svensson@skovde.se,
    Skövde, ordförande"); None when fewer than two rows are found.

    Lines with an address in the sender's signature or in a forwarded header block are not rows.
    """
    members: list[MemberRow] = []
    rejected: list[RejectedRow] = []
    emails = _Emails()
    in_signature = False
    heading_role: str | None = None
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.lstrip("> ").rstrip()
        if not line.strip() or len(line) > MAX_LINE:
            continue
        if _FORWARD_MARK.match(line):
            # A forwarded or quoted mail starts: its list counts, even after our sender's signature.
            in_signature = False
            continue
        if _MAIL_HEADER.match(line):
            continue
        if _GREETING.match(line):
            in_signature = True
            continue
        if not _ADDRESS.search(line):
            heading = _ROLE_HEADING.match(line) if len(line) <= _MAX_HEADING else None
            # "Presidium:" or "Ledamöter" above a block of lines gives them their role.
            if heading and all(fold(w) in _ROLE_WORDS for w in heading.group(1).split()):
                heading_role = heading.group(1)
            else:
                heading_role = None
            continue
        if in_signature:
            continue
        for outcome in _parse_member_line(line, municipalities, heading_role):
            if isinstance(outcome, str):
                rejected.append(RejectedRow(number, line.strip(), outcome))
                continue
            duplicate = emails.duplicate_reason(outcome.email, number)
            if duplicate:
                rejected.append(RejectedRow(number, line.strip(), duplicate))
            else:
                members.append(outcome)
    if not members or len(members) + len(rejected) < 2:
        return None
    return MemberListResult(members=tuple(members), rejected=tuple(rejected), source="body")


def _parse_member_line(line: str, municipalities: MunicipalityIndex, heading_role: str | None) -> list[MemberRow | str]:
    """The members of one line (a pasted Outlook recipient line holds several), or the reason it
    fails; an empty list when the line is prose that happens to hold an address."""
    line = _BULLET.sub("", line)
    addresses = _ADDRESS.findall(line)
    if len(addresses) > 1:
        for separator in (";", ","):
            pieces = [p for p in line.split(separator) if p.strip()]
            if len(pieces) == len(addresses) and all(len(_ADDRESS.findall(p)) == 1 for p in pieces):
                results: list[MemberRow | str] = []
                for piece in pieces:
                    results.extend(_parse_member_line(piece, municipalities, heading_role))
                return results
        return ["flera e-postadresser på samma rad"]
    address = addresses[0]
    before, _, after = line.partition(address)
    parts = [p.strip(" .") for chunk in (before, after) for p in _SEPARATORS.split(chunk)]
    parts = [p for p in parts if p]
    name = None
    others: list[str] = []
    for part in parts:
        found = None if name else person_name(part, municipalities)
        if found:
            name = found
            others.append(_remove_words(part, found))
        else:
            others.append(part)
    if name is None and any(_is_prose(part, municipalities) for part in others):
        return []
    if name is None:
        return ["namn saknas"]
    email = _normalise_email(address)
    if email is None:
        return [f"ogiltig e-postadress '{address.strip()}'"]
    role = parse_role(" ".join([heading_role or "", *others]))
    municipality = _municipality_of(email, others, municipalities)
    return [MemberRow(name=name, email=email, municipality=municipality, role=role)]


def _remove_words(part: str, name: str) -> str:
    return " ".join(w for w in part.split() if w not in name.split())


def _is_prose(part: str, municipalities: MunicipalityIndex) -> bool:
    """True when a piece of a line is ordinary words, not a municipality or a role."""
    words = [fold(w).strip(".!?") for w in part.split()]
    unexplained = [
        w
        for w in words
        if w
        and w not in _ROLE_WORDS
        and w not in ("kommun", "kommuns", "stad")
        and not municipalities.match_name(w)
    ]
    return len(unexplained) >= 2


# --- whole mail --------------------------------------------------------------------------------


def parse_member_list(
    attachments: Sequence[Attachment], body: str, municipalities: MunicipalityIndex
) -> MemberListResult | None:
    """The member list of a mail: the first attachment that holds one (Excel, CSV, Word table,
    plain text), else the lines of the body; None when neither does."""
    for attachment in attachments:
        source = attachment.filename or "bilaga"
        from_tables = _parse_tables(read_table_rows(attachment) or [], municipalities, source)
        if from_tables is not None:
            return from_tables
        text, _ = extract_text(attachment)
        from_lines = parse_member_lines(text, municipalities) if text else None
        if from_lines is not None:
            return MemberListResult(from_lines.members, from_lines.rejected, source=source)
    return parse_member_lines(body, municipalities)


def _parse_tables(
    tables: list[list[list[str]]], municipalities: MunicipalityIndex, source: str
) -> MemberListResult | None:
    """One list from every member table of one file (a presidium table and a members table)."""
    emails = _Emails()
    members: list[MemberRow] = []
    rejected: list[RejectedRow] = []
    for table in tables:
        result = _parse_table(table, municipalities, source, emails)
        if result is not None:
            members.extend(result.members)
            rejected.extend(result.rejected)
    if not members and not rejected:
        return None
    return MemberListResult(tuple(members), tuple(rejected), source=source)
