"""Fixtures shared by the pure understanding tests."""

from __future__ import annotations

import pytest

from registry.config import MunicipalityIndex, load_registry
from registry.paths import config_dir


@pytest.fixture(scope="session")
def municipalities() -> MunicipalityIndex:
    """The 15 municipalities of the shipped configuration."""
    return load_registry(config_dir()).municipality_index()
