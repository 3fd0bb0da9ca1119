"""The public site of the minutes (`registry publish`, registry/site.py, registry/publication.py): the approval
queue, the atomic build, the feeds as Atom, every link, accessibility with axe-core in headless Chromium
(screenshots kept in the test artefacts), the worker's rebuild and upload, and data protection on the site."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from registry.config import ConfigError, load_registry
from registry.domain import ObligationKind, PublicationDecision, State
from registry.facts import NetworkFacts, PublicationFact
from registry.paths import config_dir
from registry.publication import upload_command
from registry.rules import evaluate
from registry.site import minutes_blocks

REPO = Path(__file__).resolve().parent.parent
ATOM = "{http://www.w3.org/2005/Atom}"
BASE_URL = "https://utbildningskaraborg.se/natverk/"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip
# axe-core from npm, installed by .ci/run (`npm install --prefix .ci/node axe-core`), or where $MAILBOT_AXE_CORE says.
AXE = Path(os.environ.get("MAILBOT_AXE_CORE") or REPO / ".ci/node/node_modules/axe-core/axe.min.js")
PUBLISHING = {"skis", "elevhalsa"}  # the networks whose commission says the minutes go on utbildningskaraborg.se
DEMO_MINUTES = 11  # the demo registers 5 minutes of SKIS and 6 of Elevhälsa (two of them once its list came in)


def artifacts_dir() -> Path:
    directory = Path(os.environ.get("MAILBOT_TEST_ARTIFACTS") or REPO / "artifacts")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`mailbot ...` or `registry ...` as a subprocess, from this checkout."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_")}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), environment.get("PYTHONPATH")]))
    environment.update(env or {})
    entry = "from mailbot.cli import main" if args[0] == "mailbot" else "from registry.cli import main"
    return subprocess.run([sys.executable, "-c", f"{entry}; main()", *args[1:]], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def _ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, result.stderr
    return result


# --- pure: the minutes' text, the rule, the configuration -------------------------------------------------------


def test_minutes_text_becomes_headings_lists_and_paragraphs() -> None:
    text = (
        "Minnesanteckningar elevhälsa 2025-05-16\nNätverksträff fredag 16 maj 2025, Stadshuset Skövde\n"
        "Närvarande\n• Kristina Wallin, Skövde\n• Emma Holmberg, Lidköping\n§ 1 Inledning\n"
        "Ordföranden hälsade välkommen.\n§ 2 Övrigt\n- Inget övrigt.\n"
    )
    blocks = [(b.kind, b.lines) for b in minutes_blocks(text)]
    assert blocks == [
        ("paragraph", ("Nätverksträff fredag 16 maj 2025, Stadshuset Skövde",)),
        ("heading", ("Närvarande",)),
        ("list", ("Kristina Wallin, Skövde", "Emma Holmberg, Lidköping")),
        ("heading", ("§ 1 Inledning",)),
        ("paragraph", ("Ordföranden hälsade välkommen.",)),
        ("heading", ("§ 2 Övrigt",)),
        ("list", ("Inget övrigt.",)),
    ]


def test_present_list_without_bullets_is_still_a_list() -> None:
    blocks = minutes_blocks("Protokoll\nNärvarande:\nAnna Ek, Hjo\nBo Al, Skara\nMötet öppnades kl. 9.\n")
    assert [(b.kind, b.lines) for b in blocks] == [
        ("heading", ("Närvarande",)),
        ("list", ("Anna Ek, Hjo", "Bo Al, Skara")),
        ("paragraph", ("Mötet öppnades kl. 9.",)),
    ]


def _publication_findings(publications: tuple[PublicationFact, ...], today: date, key: str = "skis"):  # type: ignore[no-untyped-def]
    network = load_registry(config_dir()).network(key)
    facts = NetworkFacts(publications=publications)
    return [f for f in evaluate(network, facts, today, ()) if f.obligation is ObligationKind.PUBLICATION]


@pytest.mark.parametrize(
    ("decision", "published_on", "today", "state", "words"),
    [
        (PublicationDecision.PENDING, None, date(2025, 3, 14), State.OPEN, "väntar på godkännande"),
        (PublicationDecision.PENDING, None, date(2025, 3, 18), State.OVERDUE, "skulle publiceras senast 17 mars"),
        (PublicationDecision.APPROVED, None, date(2025, 3, 12), State.OPEN, "väntar på publicering"),
        (PublicationDecision.APPROVED, date(2025, 3, 20), date(2025, 3, 21), State.OK, "publicerades 20 mars 2025"),
        # Published after the day evaluated: not yet on the site that day (the yearly report per a date).
        (PublicationDecision.APPROVED, date(2025, 3, 20), date(2025, 3, 19), State.OVERDUE, "väntar på publicering"),
        (PublicationDecision.WITHHELD, None, date(2025, 4, 1), State.OK, "publiceras inte"),
    ],
)
def test_publication_is_ok_once_published_open_while_waiting_overdue_after_seven_days(
    decision: PublicationDecision, published_on: date | None, today: date, state: State, words: str
) -> None:
    fact = PublicationFact(minutes_id=7, meeting_date=date(2025, 3, 7), received_on=date(2025, 3, 10),
                           decision=decision, published_on=published_on, note="namnger en elev")  # fmt: skip
    [finding] = _publication_findings((fact,), today)
    assert finding.state is state
    assert finding.due == date(2025, 3, 17)
    assert finding.id == "skis:publication:7"
    assert words in finding.detail
    assert finding.as_json()["meeting_date"] == "2025-03-07"
    assert "utbildningskaraborg.se" in finding.quote


def test_no_publication_finding_for_a_network_that_need_not_publish() -> None:
    fact = PublicationFact(minutes_id=1, meeting_date=date(2025, 3, 7), received_on=date(2025, 3, 10),
                           decision=PublicationDecision.PENDING)  # fmt: skip
    assert _publication_findings((fact,), date(2025, 4, 1), key="grundskola") == []


def test_an_unknown_approval_mode_is_a_clear_configuration_error(tmp_path: Path) -> None:
    for name in ("networks.toml", "municipalities.toml"):
        shutil.copy(config_dir() / name, tmp_path / name)
    networks = tmp_path / "networks.toml"
    networks.write_text(networks.read_text(encoding="utf-8") + '\n[networks.skis.publication]\napproval = "maybe"\n',
                        encoding="utf-8")  # fmt: skip
    with pytest.raises(ConfigError) as error:
        load_registry(tmp_path)
    assert "networks.skis.publication.approval" in str(error.value)
    assert str(networks) in str(error.value)


def test_upload_command_is_split_without_a_shell_and_gets_the_build_directory(tmp_path: Path) -> None:
    site = tmp_path / "my site"
    site.mkdir()
    argv = upload_command("rsync -a --delete '{dir}/' 'web:/var/www/natverk/'; rm -rf /", site)
    assert argv == ["rsync", "-a", "--delete", f"{site.resolve()}/", "web:/var/www/natverk/;", "rm", "-rf", "/"]


# --- the demo registry, through the console scripts --------------------------------------------------------------


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if values.get("id"):
            self.ids.add(str(values["id"]))
        for name in ("href", "src"):
            if values.get(name):
                self.links.append(str(values[name]))


def _local_target(site: Path, url: str) -> Path:
    assert url.startswith(BASE_URL), url
    return site / unquote(url[len(BASE_URL) :])


def check_every_link_resolves(site: Path) -> int:
    """Every href/src of every page points at a file of the site (and a #fragment at an id of that page); nothing
    points outside it but mailto:. Returns how many links were checked."""
    checked = 0
    pages = sorted(site.rglob("*.html"))
    parsed: dict[Path, _Links] = {}
    for page in pages:
        links = _Links()
        links.feed(page.read_text(encoding="utf-8"))
        parsed[page.resolve()] = links
        assert links.scripts == 0, f"{page} has a script"
    for page, links in parsed.items():
        for link in links.links:
            if link.startswith("mailto:"):
                continue
            parts = urlsplit(link)
            assert not parts.scheme and not parts.netloc, f"{page}: external link {link}"
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            assert target.is_file(), f"{page}: {link} does not resolve"
            assert site.resolve() in target.parents, f"{page}: {link} leaves the site"
            if parts.fragment:
                assert parts.fragment in parsed[target].ids, f"{page}: #{parts.fragment} is not on {target}"
            checked += 1
    return checked


def check_feed(site: Path, path: str) -> list[ET.Element]:
    """The feed parses as Atom (RFC 4287): feed id, title, updated, author, self link; every entry an id (a tag:
    URI), a title, RFC 3339 dates and links that resolve in the site. Returns the entries."""
    root = ET.parse(site / path).getroot()
    assert root.tag == f"{ATOM}feed"
    assert root.findtext(f"{ATOM}id", "").startswith("tag:utbildningskaraborg.se,2026:")
    assert root.findtext(f"{ATOM}title", "").strip()
    datetime.fromisoformat(root.findtext(f"{ATOM}updated", "").replace("Z", "+00:00"))
    assert root.find(f"{ATOM}author/{ATOM}name") is not None
    [self_link] = [link for link in root.findall(f"{ATOM}link") if link.get("rel") == "self"]
    assert _local_target(site, self_link.get("href", "")) == site / path
    entries = root.findall(f"{ATOM}entry")
    ids = [entry.findtext(f"{ATOM}id", "") for entry in entries]
    assert len(set(ids)) == len(ids)
    for entry in entries:
        assert entry.findtext(f"{ATOM}id", "").startswith("tag:utbildningskaraborg.se,2026:")
        assert entry.findtext(f"{ATOM}title", "").strip()
        for tag in ("updated", "published"):
            moment = datetime.fromisoformat(entry.findtext(f"{ATOM}{tag}", "").replace("Z", "+00:00"))
            assert moment.tzinfo is not None
        links = {link.get("rel"): link for link in entry.findall(f"{ATOM}link")}
        assert _local_target(site, links["alternate"].get("href", "")).is_file()
        if "enclosure" in links:
            enclosure = _local_target(site, links["enclosure"].get("href", ""))
            assert enclosure.stat().st_size == int(links["enclosure"].get("length", "-1"))
    return entries


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(working directory, site) after `mailbot demo`, `registry publish --approve-all`, `registry publish --out`."""
    cwd = tmp_path_factory.mktemp("publish-demo")
    _ok(_run(["mailbot", "demo"], cwd))
    _ok(_run(["registry", "publish", "--approve-all"], cwd))
    site = cwd / "site"
    _ok(_run(["registry", "publish", "--out", str(site)], cwd))
    yield cwd, site


def test_demo_feed_holds_the_minutes_of_skis_and_elevhalsa_only(demo_site: tuple[Path, Path]) -> None:
    cwd, site = demo_site
    entries = check_feed(site, "feed.xml")
    pages = {urlsplit(e.find(f"{ATOM}link[@rel='alternate']").get("href", "")).path for e in entries}  # type: ignore[union-attr]
    networks = {path.split("/")[2] for path in pages}
    assert networks == PUBLISHING
    minutes = {}
    for key in ("skis", "elevhalsa", "grundskola", "vux", "introduktion"):
        minutes[key] = json.loads(_ok(_run(["registry", "minutes", key, "--json"], cwd)).stdout)
    assert len(entries) == len(minutes["skis"]) + len(minutes["elevhalsa"]) == DEMO_MINUTES
    for key in PUBLISHING:
        network_entries = check_feed(site, f"{key}/feed.xml")
        assert len(network_entries) == len(minutes[key])
        for item in minutes[key]:
            assert (site / key / f"{item['meeting_date']}.html").is_file()
    for key in ("grundskola", "vux", "introduktion"):
        assert not (site / key).exists()


def test_demo_site_links_all_resolve_and_no_page_has_a_script(demo_site: tuple[Path, Path]) -> None:
    _, site = demo_site
    assert check_every_link_resolves(site) > 50
    assert (site / "index.html").is_file() and (site / "skis" / "index.html").is_file()


def test_demo_minutes_page_has_the_text_and_the_original_for_download(demo_site: tuple[Path, Path]) -> None:
    cwd, site = demo_site
    page = (site / "elevhalsa" / "2025-05-16.html").read_text(encoding="utf-8")
    assert '<html lang="sv">' in page
    assert "<h1>Minnesanteckningar från nätverksträffen 16 maj 2025</h1>" in page
    assert "<li>Kristina Wallin, Skövde</li>" in page and "<h3>§ 2 Samverkan med regionen</h3>" in page
    assert 'href="2025-05-16.pdf"' in page
    original = cwd / "original.pdf"
    _ok(_run(["registry", "minutes", "--get", "11", "--out", str(original)], cwd))
    assert (site / "elevhalsa" / "2025-05-16.pdf").read_bytes() == original.read_bytes()


def test_demo_status_has_publication_findings_for_skis_and_elevhalsa(demo_site: tuple[Path, Path]) -> None:
    cwd, _ = demo_site
    # On the demo's day (21 November 2025) all nine waited longer than 7 days: published only by this test's build.
    before = json.loads(_ok(_run(["registry", "status", "--as-of", "2025-11-21", "--json"], cwd)).stdout)
    waiting = [f for f in before if f["obligation"] == "publication"]
    assert {f["network"] for f in waiting} == PUBLISHING and len(waiting) == DEMO_MINUTES
    assert {f["state"] for f in waiting} == {"overdue"}
    assert all(f["meeting_date"] and f["due"] and "väntar på publicering" in f["detail"] for f in waiting)
    # Today they are published; last year's published minutes are history, like last year's minutes.
    today = json.loads(_ok(_run(["registry", "status", "--json"], cwd)).stdout)
    assert [f for f in today if f["obligation"] == "publication" and f["state"] != "ok"] == []


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (installed by .ci/run)")
@pytest.mark.skipif(not AXE.is_file(), reason="needs axe-core from npm (installed by .ci/run into .ci/node)")
def test_demo_site_has_no_axe_violations_in_chromium(demo_site: tuple[Path, Path]) -> None:
    from playwright.sync_api import sync_playwright  # the dev extra; Debian's chromium, never `playwright install`

    _, site = demo_site
    pages = sorted(site.rglob("*.html"))
    shots = {"index.html": "webbplats-start.png", "skis/index.html": "webbplats-skis.png",
             "elevhalsa/2025-05-16.html": "webbplats-elevhalsa-2025-05-16.png"}  # fmt: skip
    violations: dict[str, list[str]] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            for path in pages:
                relative = path.relative_to(site).as_posix()
                page.goto(path.as_uri())
                if relative in shots:
                    page.screenshot(path=str(artifacts_dir() / shots[relative]), full_page=True)
                page.add_script_tag(path=str(AXE))  # the test's, never the site's: its pages have no script
                result = page.evaluate(
                    "async () => await axe.run(document, {runOnly: {type: 'tag', values: "
                    "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})"
                )
                found = [f"{v['id']}: {v['help']} ({len(v['nodes'])})" for v in result["violations"]]
                if found:
                    violations[relative] = found
                assert result["passes"], relative
            page.goto((site / "skis" / "index.html").as_uri())
            assert page.get_by_role("heading", level=1).inner_text() == "Skolutveckling i Skaraborg (SKIS)"
            assert page.get_by_role("link", name="Minnesanteckningar 7 februari 2025").count() == 1
        finally:
            browser.close()
    assert violations == {}
    for name in shots.values():
        assert (artifacts_dir() / name).stat().st_size > 20_000


# --- the queue, the build and its swap, on both engines ----------------------------------------------------------


@pytest.fixture
def demo_registry(tmp_path: Path, database_url: str) -> tuple[Path, dict[str, str]]:
    env = {"MAILBOT_DATABASE__URL": database_url}
    _ok(_run(["mailbot", "demo"], tmp_path, env))
    return tmp_path, env


def test_queue_approve_withhold_and_a_rebuild_keeps_every_address(demo_registry: tuple[Path, dict[str, str]]) -> None:
    cwd, env = demo_registry
    waiting = json.loads(_ok(_run(["registry", "publish", "--pending", "--json"], cwd, env)).stdout)
    assert {w["network"] for w in waiting} == PUBLISHING and len(waiting) == DEMO_MINUTES
    by_date = {(w["network"], w["meeting_date"]): w["id"] for w in waiting}
    approved, withheld = by_date[("skis", "2025-02-07")], by_date[("elevhalsa", "2025-05-16")]

    usage = _run(["registry", "publish", "--withhold", str(withheld)], cwd, env)
    assert usage.returncode == 2 and "--note" in usage.stderr
    unknown = _run(["registry", "publish", "--approve", "99999"], cwd, env)
    assert unknown.returncode == 1 and "no minutes with id 99999" in unknown.stderr
    grundskola = json.loads(_ok(_run(["registry", "minutes", "grundskola", "--json"], cwd, env)).stdout)[0]["id"]
    refused = _run(["registry", "publish", "--approve", str(grundskola)], cwd, env)
    assert refused.returncode == 1 and "does not ask for publication" in refused.stderr

    _ok(_run(["registry", "publish", "--approve", str(approved)], cwd, env))
    _ok(_run(["registry", "publish", "--withhold", str(withheld), "--note", "Namnger en elev."], cwd, env))
    left = json.loads(_ok(_run(["registry", "publish", "--pending", "--json"], cwd, env)).stdout)
    assert len(left) == DEMO_MINUTES - 2 and approved not in {w["id"] for w in left} and withheld not in {w["id"] for w in left}

    first = json.loads(_ok(_run(["registry", "publish", "--json"], cwd, env)).stdout)
    site = cwd / "var" / "publish"
    assert site.is_symlink() and first["first_time"] == [approved] and first["pending"] == DEMO_MINUTES - 2
    assert first["published"] == {"skis": 1, "elevhalsa": 0}
    assert (site / "skis" / "2025-02-07.html").is_file() and not (site / "elevhalsa" / "2025-05-16.html").exists()
    feed_before = (site / "feed.xml").read_bytes()
    status = json.loads(_ok(_run(["registry", "status", "--as-of", "2025-11-21", "--json"], cwd, env)).stdout)
    states = {f["id"]: (f["state"], f["detail"]) for f in status if f["obligation"] == "publication"}
    assert len(states) == DEMO_MINUTES
    assert states[f"elevhalsa:publication:{withheld}"] == (
        "ok", "Minnesanteckningar från mötet fredag 16 maj 2025 publiceras inte (beslut vid granskning: Namnger en elev.)."
    )  # fmt: skip
    # Approved and built today, i.e. after 21 November 2025: that day it still waited for the build.
    assert states[f"skis:publication:{approved}"][0] == "overdue"
    assert "väntar på publicering" in states[f"skis:publication:{approved}"][1]
    assert "väntar på godkännande" in states[f"skis:publication:{by_date[('skis', '2025-04-04')]}"][1]

    _ok(_run(["registry", "publish", "--approve-all"], cwd, env))
    second = json.loads(_ok(_run(["registry", "publish", "--json"], cwd, env)).stdout)
    assert len(second["first_time"]) == DEMO_MINUTES - 2 and set(first["pages"]) < set(second["pages"])
    assert first["build"] != second["build"] and (site / "skis" / "2025-02-07.html").is_file()
    entries = {e.findtext(f"{ATOM}id"): e.findtext(f"{ATOM}updated") for e in check_feed(site, "feed.xml")}
    before = {e.findtext(f"{ATOM}id"): e.findtext(f"{ATOM}updated") for e in ET.fromstring(feed_before)
              .findall(f"{ATOM}entry")}  # fmt: skip
    assert before.items() <= entries.items()  # the same id, the same date: a re-build changes no entry
    third = json.loads(_ok(_run(["registry", "publish", "--json"], cwd, env)).stdout)
    assert third["first_time"] == [] and third["pages"] == second["pages"]
    builds = sorted(p.name for p in (cwd / "var" / ".publish.builds").iterdir())
    assert len(builds) == 3 and Path(third["build"]).name in builds  # the one in place and keep_builds = 2


def test_publish_refuses_a_directory_it_did_not_build(tmp_path: Path) -> None:
    _ok(_run(["mailbot", "demo"], tmp_path))
    other = tmp_path / "www"
    other.mkdir()
    (other / "index.html").write_text("<p>someone else's</p>", encoding="utf-8")
    result = _run(["registry", "publish", "--out", str(other)], tmp_path)
    assert result.returncode == 1 and "was not built by `registry publish`" in result.stderr
    assert (other / "index.html").read_text(encoding="utf-8") == "<p>someone else's</p>"


# --- the worker: rebuild after new minutes, upload, a failing upload ---------------------------------------------


def _auto_config(directory: Path) -> Path:
    for name in ("networks.toml", "municipalities.toml"):
        shutil.copy(config_dir() / name, directory / name)
    networks = directory / "networks.toml"
    text = networks.read_text(encoding="utf-8").replace('[defaults.publication]\napproval = "required"',
                                                         '[defaults.publication]\napproval = "auto"')  # fmt: skip
    assert 'approval = "auto"' in text
    networks.write_text(text, encoding="utf-8")
    return directory


@pytest.mark.skipif(shutil.which("rsync") is None, reason="needs rsync (installed by .ci/run)")
def test_poll_with_new_minutes_rebuilds_and_uploads_and_a_failing_upload_alerts_once(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    config = _auto_config(tmp_path / "config")
    target = tmp_path / "webserver" / "natverk"
    target.mkdir(parents=True)
    env = {
        "MAILBOT_CONFIG_DIR": str(config),
        "MAILBOT_MAILDIR": str(REPO / "sample" / "maildir"),
        "MAILBOT_SMTP__DIRECTORY": str(tmp_path / "outbox"),
        "MAILBOT_RECEIPTS__ENABLED": "false",
        "MAILBOT_SCHEDULE__FAILURES_BEFORE_ALERT": "2",
        "MAILBOT_PUBLICATION__UPLOAD_COMMAND": f"rsync -a --delete {{dir}}/ {target}/",
    }
    first = json.loads(_ok(_run(["mailbot", "poll", "--json"], tmp_path, env)).stdout)
    assert first["site"]["built"] and first["site"]["uploaded"] is True and len(first["site"]["first_time"]) == DEMO_MINUTES
    assert (target / "skis" / "2025-02-07.html").is_file() and (target / "elevhalsa" / "feed.xml").is_file()
    assert not (target / "grundskola").exists()
    assert check_every_link_resolves(target) > 50
    idle = json.loads(_ok(_run(["mailbot", "poll", "--json"], tmp_path, env)).stdout)
    assert idle["site"] == {"built": False, "first_time": [], "uploaded": None, "upload_error": None}

    _ok(_run(["registry", "publish", "--no-upload"], tmp_path, env))  # a build the web server has not got yet
    failing = {**env, "MAILBOT_PUBLICATION__UPLOAD_COMMAND": f"rsync -a {{dir}}/ {tmp_path}/missing/deeper/"}
    for _ in range(3):
        result = json.loads(_ok(_run(["mailbot", "poll", "--json"], tmp_path, failing)).stdout)
        assert result["site"]["uploaded"] is False and "rsync failed (exit" in result["site"]["upload_error"]
    alerts = sorted((tmp_path / "outbox").glob("*alert*.eml"))
    assert len(alerts) == 1 and "webbplatsen med minnesanteckningar kan inte laddas upp" in alerts[0].read_text()
    recovered = json.loads(_ok(_run(["mailbot", "poll", "--json"], tmp_path, env)).stdout)
    assert recovered["site"]["uploaded"] is True
    alerts = sorted((tmp_path / "outbox").glob("*alert*.eml"))
    assert len(alerts) == 2 and "laddas upp igen" in alerts[1].read_text()
    again = json.loads(_ok(_run(["mailbot", "poll", "--json"], tmp_path, env)).stdout)
    assert again["site"]["uploaded"] is None  # nothing left to upload


# --- data protection -------------------------------------------------------------------------------------------

PERSON = "johan.lindberg@falkoping.se"  # SKIS's secretary: his name is in every set of SKIS minutes


def _site_bytes(site: Path) -> dict[str, bytes]:
    return {p.relative_to(site).as_posix(): p.read_bytes() for p in sorted(site.rglob("*")) if p.is_file()}


def test_forget_rebuilds_the_site_so_that_nothing_published_names_the_person(tmp_path: Path) -> None:
    _ok(_run(["mailbot", "demo"], tmp_path))
    _ok(_run(["registry", "publish", "--approve-all"], tmp_path))
    _ok(_run(["registry", "publish"], tmp_path))
    site = tmp_path / "var" / "publish"
    exported = json.loads(_ok(_run(["registry", "export-person", PERSON], tmp_path)).stdout)
    named = {p["page"] for p in exported["published_pages"]}
    assert {f"skis/{d}.html" for d in ("2025-02-07", "2025-04-04")} <= named
    assert all(page.startswith("skis/") for page in named)
    assert any(b"Johan Lindberg" in data for data in _site_bytes(site).values())

    _ok(_run(["registry", "forget", PERSON, "--yes"], tmp_path))
    files = _site_bytes(site)
    for path, data in files.items():
        assert b"Johan Lindberg" not in data and b"johan.lindberg" not in data.lower(), path
    every_build = [p for p in (tmp_path / "var" / ".publish.builds").rglob("*") if p.is_file()]
    assert all(b"Johan Lindberg" not in p.read_bytes() for p in every_build)  # no earlier build kept
    for page in named:
        assert page in files and "[borttagen]" in files[page].decode("utf-8")
        assert "Här publiceras bara texten" in files[page].decode("utf-8")
        assert page.replace(".html", ".pdf") not in files
    assert check_every_link_resolves(site) > 20
    check_feed(site, "feed.xml")
    after = json.loads(_ok(_run(["registry", "export-person", PERSON], tmp_path)).stdout)
    assert after["published_pages"] == []


def test_retention_purge_never_removes_what_is_published(tmp_path: Path) -> None:
    _ok(_run(["mailbot", "demo"], tmp_path))
    _ok(_run(["registry", "publish", "--approve-all"], tmp_path))
    _ok(_run(["registry", "publish"], tmp_path))
    site = tmp_path / "var" / "publish"
    before = _site_bytes(site)
    purged = json.loads(_ok(_run(["registry", "purge-raw-mail", "--as-of", "2035-01-01", "--yes", "--json"],
                                 tmp_path)).stdout)  # fmt: skip
    assert purged["purged"] > 50
    _ok(_run(["registry", "publish"], tmp_path))
    after = _site_bytes(site)
    assert after.keys() == before.keys()
    assert {k: v for k, v in after.items() if not k.endswith(".html") and not k.endswith(".xml")} == {
        k: v for k, v in before.items() if not k.endswith(".html") and not k.endswith(".xml")
    }
    assert sum(1 for k in after if k.endswith(".pdf") or k.endswith(".docx")) == DEMO_MINUTES


def test_publish_after_the_report_year_shows_in_the_yearly_report(demo_site: tuple[Path, Path]) -> None:
    cwd, _ = demo_site
    out = cwd / "rapport.html"
    report = json.loads(_ok(_run(["registry", "report", "--year", "2025", "--as-of", "2025-11-21", "--out", str(out),
                                  "--json"], cwd)).stdout)  # fmt: skip
    skis = next(n for n in report["networks"] if n["key"] == "skis")
    text = json.dumps(skis, ensure_ascii=False)
    assert "väntar på publicering sedan 11 februari 2025" in text
    grundskola = next(n for n in report["networks"] if n["key"] == "grundskola")
    assert "publicer" not in json.dumps(grundskola, ensure_ascii=False)
    assert datetime.now(UTC).year >= 2025


@pytest.mark.skipif(shutil.which("rsync") is None, reason="needs rsync (installed by .ci/run)")
def test_the_worker_rebuilds_and_uploads_the_site_after_a_pass_with_new_minutes(tmp_path: Path) -> None:
    """`mailbot run` itself (the scheduler, the lease): after its first pass the site is on the rsync target."""
    (tmp_path / "config").mkdir()
    target = tmp_path / "webserver"
    target.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(
        MAILBOT_CONFIG_DIR=str(_auto_config(tmp_path / "config")),
        MAILBOT_MAILDIR=str(REPO / "sample" / "maildir"),
        MAILBOT_SMTP__DIRECTORY=str(tmp_path / "outbox"),
        MAILBOT_PUBLICATION__UPLOAD_COMMAND=f"rsync -a --delete {{dir}}/ {target}/",
    )
    log = tmp_path / "worker.log"
    with log.open("w") as stderr:
        worker = subprocess.Popen([sys.executable, "-m", "mailbot.cli", "run"], cwd=tmp_path, env=env,
                                  stdout=subprocess.DEVNULL, stderr=stderr)  # fmt: skip
        try:
            deadline = datetime.now(UTC).timestamp() + 120
            # Logged once the build is uploaded (jobs.publish_if_due returns after the upload).
            while "publish: site rebuilt" not in log.read_text() and worker.poll() is None:
                assert datetime.now(UTC).timestamp() < deadline, log.read_text()[-2000:]
                subprocess.run(["sleep", "0.3"], check=True)
            worker.send_signal(15)
            assert worker.wait(timeout=30) == 0, log.read_text()[-2000:]
        finally:
            if worker.poll() is None:
                worker.kill()
    text = log.read_text()
    assert f"publish: site rebuilt ({DEMO_MINUTES} minutes published for the first time)" in text and "Traceback" not in text
    assert len(check_feed(target, "feed.xml")) == DEMO_MINUTES
    assert check_every_link_resolves(target) > 50
