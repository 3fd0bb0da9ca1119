"""Loading one module of a package without running the package's __init__ (which may import far more).

`holidays.countries` imports all of its 250 countries and `sqlmodel` the ORM and pydantic's model machinery, where
a command needs one file of each that depends on neither. `load_alone` executes that file under the given name, so
that a later import of the same name finds it in sys.modules.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load_alone(name: str, path: Path) -> ModuleType | None:
    """The module in file `path`, loaded (once) under `name`; None when the file is not there or does not load, so
    that the caller falls back to the usual import (the package's layout may change)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path) if path.is_file() else None
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception:  # noqa: BLE001  (the usual import instead)
        del sys.modules[name]
        return None
    return module
