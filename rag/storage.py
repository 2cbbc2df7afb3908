"""Which store the settings name: the embedded one (<home>/gqa.sqlite and its generation folders, the
default) or PostgreSQL (`Settings.database_url`, rag/pg/). Every call site opens its store here."""

from __future__ import annotations

import os
from pathlib import Path
from typing import cast

from rag.config import Settings
from rag.snapshot import Snapshot, database_path
from rag.store import Store


def shared(settings: Settings) -> bool:
    """Whether the store is PostgreSQL (shared by many hosts) rather than this home's files."""
    return bool(settings.database_url)


def open_store(settings: Settings, readonly: bool = False) -> Store:
    """A connection to the configured store (close it when done).

    Both stores have the same public methods; the PostgreSQL one is typed as Store for its callers.
    """
    if settings.database_url:
        from rag.pg.store import PgStore

        return cast(Store, PgStore(reader_url(settings) if readonly else settings.database_url, readonly=readonly))
    return Store(database_path(settings.home), readonly=readonly)


def for_home(home: Path) -> Settings:
    """Settings naming this home's store, for callers given only a home: its files, or the database
    GQA_DATABASE_URL names when it is set (the CLI's --database-url sets it)."""
    return Settings(home=home, database_url=os.environ.get("GQA_DATABASE_URL", ""),
                    database_read_url=os.environ.get("GQA_DATABASE_READ_URL", ""))


def read_home(home: Path) -> Store | None:
    """A read-only connection to a home's store, or None when nothing was ever ingested there."""
    settings = for_home(home)
    return open_store(settings, readonly=True) if exists(settings) else None


def reader_url(settings: Settings) -> str:
    """The PostgreSQL database readers load from: the read replica when one is set."""
    return settings.database_read_url or settings.database_url


def exists(settings: Settings) -> bool:
    """Whether there is a store to read (a database file was created; a PostgreSQL URL always is one)."""
    return bool(settings.database_url) or database_path(settings.home).exists()


def published(settings: Settings) -> str | None:
    """The generation readers should load now, or None when nothing is published (a cheap read)."""
    if settings.database_url:
        from rag.pg.reader import published as pg_published

        return pg_published(reader_url(settings))
    from rag.snapshot import published_generation

    return published_generation(settings.home)


def load_snapshot(settings: Settings, embedder_id: str, gen_id: str | None = None) -> Snapshot:
    """Load generation `gen_id` (default: the published one) from the configured store."""
    if settings.database_url:
        from rag.pg.reader import load_snapshot as pg_load

        return pg_load(reader_url(settings), embedder_id, gen_id)
    from rag.snapshot import load_snapshot as files_load

    return files_load(settings.home, embedder_id, gen_id)
