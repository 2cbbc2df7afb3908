"""A table of a home's SQLite database read row by row apart from the product's code (what tests check
the product wrote)."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def table_rows(home: Path, table: str) -> list[dict]:
    """Every row of `table` in <home>/gqa.sqlite, oldest first, as dicts."""
    con = sqlite3.connect(home / "gqa.sqlite")
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(f"SELECT * FROM {table} ORDER BY id")]
    finally:
        con.close()
