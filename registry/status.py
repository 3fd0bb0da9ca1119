"""The status of every network: facts from the registry, rules applied. The one place both CLIs call."""

from __future__ import annotations

from datetime import date

from sqlmodel import Session

from registry.facts import Finding
from registry.queries import network_facts
from registry.rules import evaluate
from registry.runtime import Runtime


def status_findings(rt: Runtime, today: date, keys: list[str] | None = None) -> list[Finding]:
    names = rt.registry.municipality_index().names
    findings: list[Finding] = []
    with Session(rt.engine(create=False)) as session:
        for network in rt.registry.networks:
            if keys is not None and network.key not in keys:
                continue
            findings.extend(evaluate(network, network_facts(session, network.key, rt.tz), today, names))
    return findings
