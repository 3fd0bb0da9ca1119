"""The receiving server's verdict on a mail's sender: Authentication-Results, ARC, Return-Path, SCL, Reply-To."""

from __future__ import annotations

import pytest

from mailbot.understand.authentication import (
    AuthenticationPolicy,
    authenticate,
    parse_authentication_results,
)
from mailbot.understand.decode import parse_mail

M365_FAIL = (
    "spf=fail (sender IP is 185.220.101.7) smtp.mailfrom=mail-relay.example.net; dkim=none (message not signed) "
    "header.d=none;dmarc=fail action=quarantine header.from=skovde.se;compauth=fail reason=000"
)
M365_PASS = (
    "spf=pass (sender IP is 40.107.22.51) smtp.mailfrom=skovde.se; dkim=pass (signature was verified) "
    "header.d=skovde.se;dmarc=pass action=none header.from=skovde.se;compauth=pass reason=100"
)
KNOWN = ("skovde.se", "hjo.se", "skaraborg.se")


def mail(*headers: tuple[str, str], body: str = "Hej!\r\n\r\nHär kommer listan.") -> object:
    lines = [f"{k}: {v}" for k, v in headers]
    lines += [
        "From: Anna Berg <anna.berg@skovde.se>",
        "To: utbildning@skaraborg.se",
        "Subject: Medlemslista SKIS",
        "Date: Mon, 13 Oct 2025 09:00:00 +0200",
        "Message-ID: <a1@skovde.se>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "",
        body,
    ]
    return parse_mail("\r\n".join(lines).encode())


def test_microsoft_365_header_has_no_authserv_id():
    parsed = parse_authentication_results(M365_FAIL)
    assert parsed.authserv_id is None
    assert parsed.results == {"spf": "fail", "dkim": "none", "dmarc": "fail", "compauth": "fail"}


def test_header_with_authserv_id_and_comments():
    parsed = parse_authentication_results("mx.skaraborg.se 1; spf=pass (ok) smtp.mailfrom=hjo.se; dmarc=pass")
    assert parsed.authserv_id == "mx.skaraborg.se"
    assert parsed.results == {"spf": "pass", "dmarc": "pass"}


def test_arc_authentication_results_instance_then_authserv_id():
    parsed = parse_authentication_results("i=1; mx.google.com; dkim=pass header.d=hjo.se; dmarc=pass")
    assert parsed.authserv_id == "mx.google.com"
    assert parsed.results["dmarc"] == "pass"


def test_dmarc_and_compauth_fail_is_forged():
    verdict = authenticate(mail(("Authentication-Results", M365_FAIL)), AuthenticationPolicy(known_domains=KNOWN))
    assert verdict.checked
    assert len(verdict.problems) == 1
    assert "dmarc=fail" in verdict.problems[0] and "compauth=fail" in verdict.problems[0]
    assert "forged" in verdict.problems[0]


def test_pass_is_no_problem():
    verdict = authenticate(mail(("Authentication-Results", M365_PASS)), AuthenticationPolicy(known_domains=KNOWN))
    assert verdict.checked and verdict.problems == ()


def test_topmost_header_counts_not_one_the_sender_wrote_below_it():
    # The attacker wrote a passing header; Microsoft 365 put its own on top.
    raw = mail(("Authentication-Results", M365_FAIL), ("Authentication-Results", M365_PASS))
    assert authenticate(raw, AuthenticationPolicy()).problems


def test_trusted_authserv_id_skips_headers_of_other_servers():
    forged_pass = "mx.skaraborg.se; dmarc=pass"  # would be believed if it came first and no id was configured
    own = "mx.skaraborg.se; dmarc=fail header.from=skovde.se"
    raw = mail(("Authentication-Results", "relay.example.net; dmarc=pass"), ("Authentication-Results", own),
               ("Authentication-Results", forged_pass))  # fmt: skip
    verdict = authenticate(raw, AuthenticationPolicy(trusted_authserv_ids=("mx.skaraborg.se",)))
    assert verdict.problems and "dmarc=fail" in verdict.problems[0]


def test_no_header_from_trusted_server_says_so():
    raw = mail(("Authentication-Results", "relay.example.net; dmarc=fail"))
    verdict = authenticate(raw, AuthenticationPolicy(trusted_authserv_ids=("mx.skaraborg.se",)))
    assert not verdict.checked and not verdict.problems
    assert any("no Authentication-Results from a trusted server" in r for r in verdict.reasons)


def test_no_verdict_at_all_falls_back_and_says_so():
    verdict = authenticate(mail(), AuthenticationPolicy())
    assert not verdict.checked and not verdict.problems
    assert any("no authentication verdict" in r for r in verdict.reasons)


def test_trusted_forwarder_arc_rescues_a_dmarc_fail():
    own = "dmarc=fail action=none header.from=hjo.se;compauth=fail reason=001;arc=pass"
    arc = "i=1; lists.skaraborg.se; dkim=pass header.d=hjo.se; dmarc=pass"
    raw = mail(("Authentication-Results", own), ("ARC-Authentication-Results", arc))
    policy = AuthenticationPolicy(trusted_arc_forwarders=("lists.skaraborg.se",))
    assert authenticate(raw, policy).problems == ()
    assert authenticate(raw, AuthenticationPolicy()).problems  # an untrusted forwarder rescues nothing


def test_arc_is_not_believed_when_our_server_found_the_chain_broken():
    own = "dmarc=fail header.from=hjo.se;compauth=fail;arc=fail"
    arc = "i=1; lists.skaraborg.se; dmarc=pass"
    raw = mail(("Authentication-Results", own), ("ARC-Authentication-Results", arc))
    assert authenticate(raw, AuthenticationPolicy(trusted_arc_forwarders=("lists.skaraborg.se",))).problems


def test_spf_fail_without_dmarc_or_dkim_is_forged():
    raw = mail(("Authentication-Results", "spf=fail smtp.mailfrom=skovde.se; dkim=none; dmarc=none"))
    assert authenticate(raw, AuthenticationPolicy()).problems


@pytest.mark.parametrize(("scl", "spam"), [("5", True), ("9", True), ("1", False), ("-1", False)])
def test_exchange_spam_score(scl: str, spam: bool):
    verdict = authenticate(mail(("X-MS-Exchange-Organization-SCL", scl)), AuthenticationPolicy())
    assert verdict.checked
    assert bool(verdict.problems) is spam


def test_return_path_of_another_domain():
    raw = mail(("Return-Path", "<bounce-77@mail-relay.example.net>"))
    problems = authenticate(raw, AuthenticationPolicy()).problems
    assert problems and "Return-Path mail-relay.example.net" in problems[0]


def test_return_path_of_a_subdomain_is_aligned():
    assert authenticate(mail(("Return-Path", "<anna.berg@mail.skovde.se>")), AuthenticationPolicy()).problems == ()


def test_foreign_reply_to_is_a_reason():
    raw = mail(("Reply-To", "Anna Berg <anna.berg.privat@outlook.com>"))
    problems = authenticate(raw, AuthenticationPolicy(known_domains=KNOWN)).problems
    assert problems == ("Reply-To asks for answers to another address (anna.berg.privat@outlook.com)",)


def test_reply_to_a_colleague_in_another_municipality_is_fine():
    raw = mail(("Reply-To", "lena.sundberg@hjo.se"))
    assert authenticate(raw, AuthenticationPolicy(known_domains=KNOWN)).problems == ()


@pytest.mark.parametrize(
    "sentence",
    [
        "Svara till min privata adress, jobbmejlen krånglar.",
        "Skicka gärna svaret till min privata mejl i stället.",
        "Använd min nya e-postadress framöver: anna@outlook.com",
    ],
)
def test_a_request_to_answer_a_private_address(sentence: str):
    problems = authenticate(mail(body=f"Hej!\r\n\r\n{sentence}"), AuthenticationPolicy()).problems
    assert problems == ("the sender asks for answers to a private address",)
