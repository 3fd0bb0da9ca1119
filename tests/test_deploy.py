"""The deployment files: the systemd unit passes `systemd-analyze verify`; the Containerfile and the
compose file are well-formed and say what the README promises (the image itself cannot be built here)."""

from __future__ import annotations

import grp
import os
import pwd
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def unit_settings(text: str) -> dict[str, list[str]]:
    """`Key=value` lines of a unit file (all sections), values in order."""
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze not found: install systemd (apt-get install -y systemd; .ci/run does)",
                    pytrace=False)  # fmt: skip
    mailbot = shutil.which("mailbot")
    assert mailbot is not None, "the mailbot command is not installed (pip install -e .)"
    # verify checks that ExecStart's binary exists and warns about special users: point both at real ones.
    user = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    text = (DEPLOY / "mailbot.service").read_text(encoding="utf-8")
    local = re.sub(r"^ExecStart=/opt/mailbot/bin/mailbot ", f"ExecStart={mailbot} ", text, flags=re.M)
    local = re.sub(r"^User=mailbot$", f"User={user}", local, flags=re.M)
    local = re.sub(r"^Group=mailbot$", f"Group={group}", local, flags=re.M)
    assert local.count(mailbot) == 1 and f"User={user}" in local
    unit = tmp_path / "mailbot.service"
    unit.write_text(local, encoding="utf-8")
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stderr.strip() and not result.stdout.strip(), (
        f"systemd-analyze verify: exit {result.returncode}\n{result.stdout}{result.stderr}"
    )


def test_systemd_unit_checks_catch_a_broken_unit(tmp_path: Path) -> None:
    """The verify test above would notice a typo (the unit is not just accepted blindly)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze not found: install systemd (apt-get install -y systemd)", pytrace=False)
    text = (DEPLOY / "mailbot.service").read_text(encoding="utf-8").replace("ProtectSystem=", "ProtectSytem=")
    unit = tmp_path / "mailbot.service"
    unit.write_text(text, encoding="utf-8")
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 or "Unknown key" in result.stderr


def test_systemd_unit_is_hardened_and_takes_secrets_from_credentials() -> None:
    settings = unit_settings((DEPLOY / "mailbot.service").read_text(encoding="utf-8"))
    expected = {
        "User": "mailbot", "Restart": "on-failure", "EnvironmentFile": "/etc/mailbot/mailbot.env",
        "ProtectSystem": "strict", "ReadWritePaths": "/var/lib/mailbot", "PrivateTmp": "yes",
        "NoNewPrivileges": "yes", "ProtectHome": "yes", "WorkingDirectory": "/var/lib/mailbot",
        "ExecStart": "/opt/mailbot/bin/mailbot run",
    }  # fmt: skip
    for key, value in expected.items():
        assert settings.get(key) == [value], key
    assert "imap-password:/etc/mailbot/credentials/imap-password" in settings["LoadCredential"]
    assert "MAILBOT_IMAP__PASSWORD_FILE=%d/imap-password" in settings["Environment"]
    assert "MAILBOT_SMTP__PASSWORD_FILE=%d/smtp-password" in settings["Environment"]
    example = (DEPLOY / "mailbot.env.example").read_text(encoding="utf-8")
    assert not re.search(r"^MAILBOT_\w*PASSWORD=", example, flags=re.M), "passwords belong in credentials"
    for line in example.splitlines():
        if line and not line.startswith("#"):
            assert re.fullmatch(r"MAILBOT_[A-Z_]+=\S.*", line), line


DOCKERFILE_INSTRUCTIONS = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
                           "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"}  # fmt: skip


def containerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined; comments and blank lines dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        word, _, rest = pending.strip().partition(" ")
        instructions.append((word, rest.strip()))
        pending = ""
    assert not pending, "the Containerfile ends inside a continued line"
    return instructions


def test_containerfile_is_well_formed() -> None:
    instructions = containerfile_instructions((DEPLOY / "Containerfile").read_text(encoding="utf-8"))
    for word, _ in instructions:
        assert word in DOCKERFILE_INSTRUCTIONS, word
    assert instructions[0] == ("FROM", "python:3.11-slim")
    args = {word: [rest for w, rest in instructions if w == word] for word in DOCKERFILE_INSTRUCTIONS}
    assert any(".[postgres]" in run and "pip install" in run for run in args["RUN"])
    assert args["VOLUME"] == ['["/app/config", "/var/lib/mailbot"]']
    assert args["CMD"] == ['["mailbot", "run"]']
    # Non-root: the last USER before CMD is an unprivileged user created in the image.
    users = args["USER"]
    assert (
        users and users[-1] not in {"root", "0"} and any("useradd" in run and users[-1] in run for run in args["RUN"])
    )
    assert [w for w, _ in instructions].index("USER") < [w for w, _ in instructions].index("CMD")
    # Everything it copies exists (the build context is the repository root).
    for rest in args["COPY"]:
        *sources, _target = shlex.split(rest)
        for source in sources:
            assert (ROOT / source).exists(), source


def load_compose(text: str) -> dict:
    try:
        import yaml
    except ImportError:  # PyYAML is not a dependency: a minimal check of the structure instead
        return minimal_yaml_outline(text)
    loaded = yaml.safe_load(text)
    assert isinstance(loaded, dict)
    return loaded


def minimal_yaml_outline(text: str) -> dict:
    """Nested dict of the block-mapping keys (values as strings); enough to check a compose file's outline."""
    root: dict = {}
    stack: list[tuple[int, dict]] = [(-1, root)]
    for number, line in enumerate(text.splitlines(), 1):
        assert "\t" not in line, f"line {number}: a tab (YAML indents with spaces)"
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip(" "))
        while stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1]
        if stripped.startswith("- "):
            parent.setdefault("-", []).append(stripped[2:])
            continue
        match = re.fullmatch(r"([\w.-]+):(?:\s+(.*))?", stripped)
        assert match, f"line {number}: not `key:` or `key: value`: {stripped!r}"
        key, value = match.group(1), match.group(2)
        if value is None:
            child: dict = {}
            parent[key] = child
            stack.append((indent, child))
        else:
            parent[key] = value.strip().strip("\"'")
    return root


def test_compose_file_is_well_formed() -> None:
    compose = load_compose((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert set(services) == {"db", "worker"}
    assert services["db"]["image"] == "postgres:16"
    worker = services["worker"]
    assert worker["build"]["dockerfile"] == "deploy/Containerfile"
    assert (DEPLOY / worker["build"]["context"] / worker["build"]["dockerfile"]).is_file()
    assert worker["environment"]["MAILBOT_DATABASE__URL"].startswith("postgresql+psycopg://")
    assert "@db:5432/" in worker["environment"]["MAILBOT_DATABASE__URL"]
    assert "db" in worker["depends_on"]
    volumes = worker["volumes"] if isinstance(worker["volumes"], list) else worker["volumes"]["-"]
    assert any(":/app/config" in v for v in volumes) and any(":/var/lib/mailbot" in v for v in volumes)
    named = {v.split(":")[0] for v in volumes if not v.startswith(".")}
    assert named <= set(compose["volumes"])
    for secret in compose["secrets"].values():
        assert secret["file"].startswith("./secrets/")


def test_minimal_yaml_outline_reads_the_compose_file_like_yaml() -> None:
    """The fallback parser (used when PyYAML is absent) agrees with PyYAML on the outline where both exist."""
    text = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    outline = minimal_yaml_outline(text)
    assert outline["services"]["db"]["image"] == "postgres:16"
    assert outline["services"]["worker"]["volumes"]["-"] == [
        "./config:/app/config:ro",
        "mailbot-state:/var/lib/mailbot",
    ]
    try:
        import yaml
    except ImportError:  # nothing to compare with
        pass
    else:
        assert set(yaml.safe_load(text)) == set(outline)
    with pytest.raises(AssertionError):
        minimal_yaml_outline("services:\n\tworker: x\n")
