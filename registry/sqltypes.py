"""SQLModel's column types (AutoString, UTCDateTime) for the Core tables of registry/tables.py, without SQLModel.

`import sqlmodel.sql.sqltypes` runs sqlmodel/__init__.py, which imports the ORM and pydantic's model machinery (a
tenth of a second); the module itself needs only SQLAlchemy. So its file is loaded alone, under a name of ours: the
types are SQLModel's code, unchanged (UTCDateTime turns what SQLite returns into aware UTC datetimes), and
`sqlmodel.sql.sqltypes` stays SQLModel's own module when the ORM is imported too (loaded under its real name, it
would lack its attribute on the parent package, which the migrations read). Should the package's layout ever
change, SQLModel's module is imported as usual.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from registry.lone_module import load_alone

NAME = "registry._sqlmodel_sqltypes"


def _sqlmodel_sqltypes() -> ModuleType:
    package = importlib.util.find_spec("sqlmodel")  # finds the package without running its __init__
    folders = list(package.submodule_search_locations or ()) if package is not None else []
    module = load_alone(NAME, Path(folders[0]) / "sql" / "sqltypes.py") if folders else None
    if module is None:
        import sqlmodel.sql.sqltypes

        return sqlmodel.sql.sqltypes
    return module


_module = _sqlmodel_sqltypes()
AutoString = _module.AutoString
UTCDateTime = _module.UTCDateTime
