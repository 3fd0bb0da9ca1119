"""Full-text search over minutes documents and registered mails.

SQLite: the FTS5 table `search_index` (migration 0002; kept in step by triggers; unicode61 tokens, so å, ä and ö
stay distinct, no stemming). PostgreSQL: the `swedish` text-search configuration in the query itself (stemmed:
`protokollen` finds `protokoll`; å, ä and ö distinct too). The same query syntax on both. Read-only.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime

from sqlalchemy import Date, Integer, String, bindparam, text
from sqlmodel import Session

from registry.errors import ExpectedError
from registry.models import InboundMail

SNIPPET_TOKENS = 12
DEFAULT_LIMIT = 50
_TERM = re.compile(r'"([^"]*)"(\*?)|(\S+)')


class SearchSyntaxError(ExpectedError):
    pass


@dataclass(frozen=True)
class Hit:
    kind: str  # "minutes" or "mail"
    id: int  # minutes id, or inbound mail id
    network: str | None
    meeting_date: str | None  # minutes: the meeting's date (ISO)
    received: str | None  # mails: when received (ISO)
    filename: str | None  # minutes: the document's file name
    subject: str | None  # mails: the subject
    snippet: str  # the match marked with [ ]
    rank: float

    def as_json(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Term:
    word: str
    prefix: bool


def parse_terms(query: str) -> list[Term]:
    """Words (all must match); `word*` is a prefix; "two words" is a phrase."""
    terms = []
    for match in _TERM.finditer(query):
        if match.group(1) is not None:
            word, prefix = match.group(1).strip(), bool(match.group(2))
        else:
            raw = match.group(3)
            prefix = raw.endswith("*")
            word = raw.rstrip("*").strip()
        if word:
            terms.append(Term(word, prefix))
    if not terms:
        raise SearchSyntaxError("give some words to search for")
    return terms


def fts5_query(terms: list[Term]) -> str:
    """Every term quoted (so `14/3` or an address is not FTS5 syntax), prefix terms as "word"*."""
    return " ".join('"' + t.word.replace('"', '""') + '"' + ("*" if t.prefix else "") for t in terms)


def tsquery(terms: list[Term]) -> str:
    """A to_tsquery() expression: words ANDed, phrases with <->, prefixes with :*."""
    parts = []
    for term in terms:
        words = [w for w in re.split(r"[^\w]+", term.word) if w]
        if not words:
            continue
        quoted = ["'" + w.replace("'", "''") + "'" for w in words]
        if term.prefix:
            quoted[-1] += ":*"
        parts.append("(" + " <-> ".join(quoted) + ")")
    if not parts:
        raise SearchSyntaxError("give some words to search for")
    return " & ".join(parts)


def _year_bounds(year: int | None) -> tuple[date, date, datetime, datetime]:
    if year is None:
        return date.min, date.max, datetime(1, 1, 2, tzinfo=UTC), datetime(9999, 12, 30, tzinfo=UTC)
    return (
        date(year, 1, 1),
        date(year, 12, 31),
        datetime(year, 1, 1, tzinfo=UTC),
        datetime(year + 1, 1, 1, tzinfo=UTC),
    )


SQLITE_MINUTES = """
SELECT mi.id AS id, mi.network_key AS network, mi.meeting_date AS meeting_date, d.filename AS filename,
       snippet(search_index, 1, char(2), char(3), '…', :tokens) AS snippet,
       snippet(search_index, 0, char(2), char(3), '…', :tokens) AS title_snippet, search_index.rank AS rank
FROM search_index
JOIN document d ON d.id = search_index.rowid / 2
JOIN minutes mi ON mi.document_id = d.id
WHERE search_index MATCH :q AND search_index.rowid % 2 = 0
  AND (:network IS NULL OR mi.network_key = :network)
  AND mi.meeting_date BETWEEN :first_day AND :last_day
ORDER BY search_index.rank, mi.meeting_date DESC
LIMIT :limit
"""

SQLITE_MAILS = """
SELECT m.id AS id, m.network_key AS network, m.received AS received, m.subject AS subject,
       snippet(search_index, 1, char(2), char(3), '…', :tokens) AS snippet,
       snippet(search_index, 0, char(2), char(3), '…', :tokens) AS title_snippet, search_index.rank AS rank
FROM search_index
JOIN inbound_mail m ON m.id = (search_index.rowid - 1) / 2
WHERE search_index MATCH :q AND search_index.rowid % 2 = 1
  AND (:network IS NULL OR m.network_key = :network)
  AND m.received >= :start AND m.received < :stop
ORDER BY search_index.rank, m.received DESC
LIMIT :limit
"""

# PostgreSQL: the `swedish` configuration stems and drops stop words, but never folds å/ä/ö to a/o. Migration 0006
# stores each row's vector in a generated column `search_vector` with a GIN index, so neither matching nor ranking
# parses the text again (without it, 10,000 minutes took 11 s per query). The
# inner query ranks and limits; the outer one runs the costly ts_headline() only for the rows shown. ts_headline
# marks with \x02/\x03 (as snippet() does on SQLite) so _snippet() can tell a body match from a title match.
PG_MINUTES = """
SELECT mi.id AS id, mi.network_key AS network, mi.meeting_date AS meeting_date, d.filename AS filename,
       ts_headline('swedish', d.text, to_tsquery('swedish', :q), :options) AS snippet,
       ts_headline('swedish', d.filename, to_tsquery('swedish', :q), :options) AS title_snippet, best.rank AS rank
FROM (
    SELECT mi.id AS minutes_id, -ts_rank(d.search_vector, query) AS rank
    FROM document d
    JOIN minutes mi ON mi.document_id = d.id
    CROSS JOIN to_tsquery('swedish', :q) AS query
    WHERE d.search_vector @@ query
      AND (CAST(:network AS VARCHAR) IS NULL OR mi.network_key = :network)
      AND mi.meeting_date BETWEEN :first_day AND :last_day
    ORDER BY rank, mi.meeting_date DESC
    LIMIT :limit
) AS best
JOIN minutes mi ON mi.id = best.minutes_id
JOIN document d ON d.id = mi.document_id
ORDER BY best.rank, mi.meeting_date DESC
"""

PG_MAILS = """
SELECT m.id AS id, m.network_key AS network, m.received AS received, m.subject AS subject,
       ts_headline('swedish', m.body_text, to_tsquery('swedish', :q), :options) AS snippet,
       ts_headline('swedish', m.subject, to_tsquery('swedish', :q), :options) AS title_snippet, best.rank AS rank
FROM (
    SELECT m.id AS mail_id, -ts_rank(m.search_vector, query) AS rank
    FROM inbound_mail m
    CROSS JOIN to_tsquery('swedish', :q) AS query
    WHERE m.search_vector @@ query
      AND (CAST(:network AS VARCHAR) IS NULL OR m.network_key = :network)
      AND m.received >= :start AND m.received < :stop
    ORDER BY rank, m.received DESC
    LIMIT :limit
) AS best
JOIN inbound_mail m ON m.id = best.mail_id
ORDER BY best.rank, m.received DESC
"""
PG_HEADLINE_OPTIONS = f"StartSel={chr(2)}, StopSel={chr(3)}, MaxWords=18, MinWords=6, MaxFragments=1"


def _snippet(body: str | None, title: str | None) -> str:
    """The body's snippet when the match is in the body, else the title's; markers become [ ]."""
    chosen = body or ""
    if "\x02" not in chosen and title and "\x02" in title:
        chosen = title
    return chosen.replace("\x02", "[").replace("\x03", "]")


def search(
    session: Session,
    query: str,
    network: str | None = None,
    year: int | None = None,
    limit: int = DEFAULT_LIMIT,
) -> list[Hit]:
    """Minutes and mails matching `query`, best first (minutes before mails at equal rank)."""
    terms = parse_terms(query)
    first_day, last_day, start, stop = _year_bounds(year)
    received_type = InboundMail.__table__.c.received.type  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        q, minutes_sql, mails_sql = fts5_query(terms), SQLITE_MINUTES, SQLITE_MAILS
    else:
        q, minutes_sql, mails_sql = tsquery(terms), PG_MINUTES, PG_MAILS
    common = {"q": q, "network": network, "limit": limit, "tokens": SNIPPET_TOKENS}
    minutes_stmt = (
        text(minutes_sql)
        .bindparams(bindparam("first_day", type_=Date()), bindparam("last_day", type_=Date()))
        .columns(
            id=Integer(),
            network=String(),
            meeting_date=Date(),
            filename=String(),
            snippet=String(),
            title_snippet=String(),
        )
    )
    mails_stmt = (
        text(mails_sql)
        .bindparams(bindparam("start", type_=received_type), bindparam("stop", type_=received_type))
        .columns(
            id=Integer(),
            network=String(),
            received=received_type,
            subject=String(),
            snippet=String(),
            title_snippet=String(),
        )
    )
    if dialect == "sqlite":
        minutes_params = {k: v for k, v in common.items()}
        mails_params = {k: v for k, v in common.items()}
    else:
        minutes_params = {k: v for k, v in common.items() if k != "tokens"} | {"options": PG_HEADLINE_OPTIONS}
        mails_params = dict(minutes_params)
    hits: list[Hit] = []
    for row in session.connection().execute(minutes_stmt, {**minutes_params, "first_day": first_day,
                                                           "last_day": last_day}):  # fmt: skip
        hits.append(
            Hit(
                "minutes",
                row.id,
                row.network,
                row.meeting_date.isoformat(),
                None,
                row.filename,
                None,
                _snippet(row.snippet, row.title_snippet),
                float(row.rank),
            )  # fmt: skip
        )
    for row in session.connection().execute(mails_stmt, {**mails_params, "start": start, "stop": stop}):
        hits.append(
            Hit(
                "mail",
                row.id,
                row.network,
                None,
                row.received.isoformat(),
                None,
                row.subject,
                _snippet(row.snippet, row.title_snippet),
                float(row.rank),
            )  # fmt: skip
        )
    hits.sort(key=lambda h: (h.rank, 0 if h.kind == "minutes" else 1))
    return hits[:limit]
