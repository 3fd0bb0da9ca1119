"""The status of every network: facts from the registry, rules applied. The one place both CLIs call."""

from __future__ import annotations

from datetime import date

from registry.facts import Finding, NetworkFacts
from registry.queries import all_network_facts
from registry.rules import evaluate, history_start
from registry.runtime import Runtime


def status_findings(rt: Runtime, today: date, keys: list[str] | None = None) -> list[Finding]:
    names = rt.registry.municipality_index().names
    networks = [network for network in rt.registry.networks if keys is None or network.key in keys]
    with rt.reader().connect() as connection:
        # All networks' facts in a few queries (not a few per network); every network when none is chosen.
        facts = all_network_facts(connection, rt.tz, keys, members_on=today, meetings_since=history_start(today))
    empty = NetworkFacts()
    findings: list[Finding] = []
    for network in networks:
        findings.extend(evaluate(network, facts.get(network.key, empty), today, names))
    return findings
