"""Benchmark: `registry search` over 10,000 minutes documents, on SQLite (FTS5) and PostgreSQL (`swedish`, GIN).

Run: python benchmarks/search.py [--documents N] [--engines sqlite,postgres]
PostgreSQL: a throwaway cluster started like the test suite's (tests/servers.py), or --postgres-url URL of an
empty database.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlmodel import Session

from registry import record
from registry.config import load_registry
from registry.db import open_registry
from registry.models import InboundMail
from registry.paths import config_dir
from registry.search import search

WORDS = ("närvarande beslut skolutveckling elevhälsoplan läxhjälp kompetensutveckling budget rektor "
         "förskoleklass introduktionsprogram språkstöd vuxenutbildning Skövde Lidköping Mariestad Falköping "
         "Hjo Tibro Töreboda Gullspång Karlsborg Essunga Grästorp Vara Götene Tidaholm").split()  # fmt: skip


def fill(engine, count: int) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(7)
    networks = ["skis", "grundskola", "elevhalsa", "introduktion", "vux"]
    start = date(2015, 1, 2)
    with Session(engine) as session:
        for i in range(count):
            network = networks[i % len(networks)]
            day = start + timedelta(days=i)
            received = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
            mail = InboundMail(sha256=os.urandom(32).hex(), folder="INBOX", subject=f"Protokoll {network} {day}",
                               body_text="Se bifogat.", received=received, first_seen=received,
                               status="registered", network_key=network)  # fmt: skip
            session.add(mail)
            session.flush()
            body = f"Protokoll {network} {day}\n" + " ".join(rng.choice(WORDS) for _ in range(300))
            doc, _ = record.document(session, f"Protokoll {network} {day}.docx", "text/plain", body.encode(), body,
                                     mail.id or 0)  # fmt: skip
            record.minutes(session, network, day, doc, [], received, mail.id or 0)
        session.commit()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--engines", default="sqlite", help="comma-separated: sqlite,postgres")
    parser.add_argument("--postgres-url", help="an empty PostgreSQL database (default: start a throwaway cluster)")
    args = parser.parse_args()
    for engine_name in args.engines.split(","):
        if engine_name == "sqlite":
            with tempfile.TemporaryDirectory() as folder:
                run(f"sqlite:///{Path(folder) / 'bench.sqlite3'}", args.documents)
        elif args.postgres_url:
            run(args.postgres_url, args.documents)
        else:
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
            from servers import PostgresServer

            server = PostgresServer()
            server.init()
            server.start()
            try:
                run(server.url(server.create_database("bench")), args.documents)
            finally:
                server.close()


def run(url: str, documents: int) -> None:
    engine = open_registry(url, load_registry(config_dir()))
    print(f"--- {engine.dialect.name}")
    began = time.perf_counter()
    fill(engine, documents)
    print(f"filled {documents} documents in {time.perf_counter() - began:.1f} s")
    with Session(engine) as session:
        for query, options in [("elevhälsoplan", {}), ("läxhj*", {}), ("kompetensutveckling budget", {}),
                               ("rektor", {"network": "vux", "year": 2020}), ("ingenträff", {})]:  # fmt: skip
            search(session, query, **options)  # warm
            began = time.perf_counter()
            runs = 20
            for _ in range(runs):
                hits = search(session, query, **options)  # type: ignore[arg-type]
            elapsed = (time.perf_counter() - began) / runs
            print(f"search {query!r} {options or ''}: {len(hits)} hits (limit 50) in {elapsed * 1000:.1f} ms")
    engine.dispose()


if __name__ == "__main__":
    main()
