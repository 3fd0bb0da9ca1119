"""Where the bundled config/, templates/ and sample mailbox are, installed or not.

A source checkout (or an editable install) uses the top-level folders of the repository;
a wheel carries copies under `registry/_bundled/`.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent


def bundled(name: str) -> Path:
    """The bundled folder `name` ("config", "templates", "sample")."""
    for candidate in (_CHECKOUT / name, _PACKAGE / "_bundled" / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"bundled folder {name!r} not found next to {_PACKAGE}")


def config_dir() -> Path:
    return bundled("config")


def templates_dir() -> Path:
    return bundled("templates")
