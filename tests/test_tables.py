"""registry/tables.py, the Core tables the read-only commands query, is the schema of the SQLModel models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import MetaData
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlmodel import SQLModel

import registry.models_ops  # noqa: F401  (its tables join SQLModel's metadata)
from registry import tables, write_tables

ROOT = Path(__file__).resolve().parent.parent


def test_tables_py_is_written_from_the_models_as_they_are() -> None:
    assert write_tables.TARGET.read_text(encoding="utf-8") == write_tables.source(), (
        "the models changed: run `python -m registry.write_tables`"
    )


def _ddl(metadata: MetaData, dialect: object) -> dict[str, list[str]]:
    return {
        name: [str(CreateTable(table).compile(dialect=dialect))]  # type: ignore[arg-type]
        + sorted(str(CreateIndex(index).compile(dialect=dialect)) for index in table.indexes)  # type: ignore[arg-type]
        for name, table in metadata.tables.items()
    }


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()], ids=["sqlite", "postgresql"])
def test_the_core_tables_make_the_schema_of_the_models(dialect: object) -> None:
    assert _ddl(tables.metadata, dialect) == _ddl(SQLModel.metadata, dialect)


def test_the_core_tables_have_the_models_column_types_and_defaults() -> None:
    for name, table in SQLModel.metadata.tables.items():
        core = tables.metadata.tables[name]
        for column in table.columns:
            mirror = core.columns[column.name]
            assert (type(mirror.type).__name__, repr(mirror.type)) == (type(column.type).__name__, repr(column.type))
            assert mirror.type.python_type is column.type.python_type
            default = column.default.arg if column.default is not None else None
            assert (mirror.default.arg if mirror.default is not None else None) == default


def test_the_core_tables_import_neither_sqlmodel_nor_the_orm() -> None:
    program = (
        "import sys, registry.tables; print(sorted({'sqlmodel', 'sqlalchemy.orm', 'pydantic'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip() == "[]"
