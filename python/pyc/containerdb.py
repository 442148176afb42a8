"""$PYC_ROOT/pyc.db: the containers, volumes, networks and endpoints tables in SQLite (WAL, so
readers never wait for a writer; a busy timeout, so writers take turns). One row per container:
id, name (UNIQUE: two commands never share one), creation time, and the record (msgpack) that
`inspect` shows. The container's directory keeps its files; a detached container's live state is
its monitor's state.msgpack. One row per volume (its record), and one per volume and container
that uses it: a foreign key keeps a used volume's row, and the rows of a container go with it.

The store before pyc.db kept records as containers/<id>/container.msgpack and names as files
under names/: they are imported once, when pyc.db is made."""

from __future__ import annotations

import os
import sqlite3

from pyc_core import packb, unpackb

SCHEMA_VERSION = 3
SCHEMA = """CREATE TABLE containers (
    id      TEXT PRIMARY KEY,
    name    TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL,
    record  BLOB NOT NULL
)"""
# Version 2: volumes, and who uses them.
VOLUMES = (
    """CREATE TABLE volumes (
    name    TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    record  BLOB NOT NULL
)""",
    """CREATE TABLE volume_users (
    volume    TEXT NOT NULL REFERENCES volumes (name),
    container TEXT NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    PRIMARY KEY (volume, container)
)""",
    "CREATE INDEX volume_users_by_container ON volume_users (container)",
)

# Version 3: networks, and the endpoints of running containers on them (one row per container
# and network, while its holder lives: the address and MAC are UNIQUE in the network). The
# endpoints table is unused since endpoints became files of the network's run directory
# (network/store.py: a start opens no pyc.db); it stays for the schema's version.
NETWORKS = (
    """CREATE TABLE networks (
    id      TEXT PRIMARY KEY,
    name    TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL,
    record  BLOB NOT NULL
)""",
    """CREATE TABLE endpoints (
    network   TEXT NOT NULL,
    container TEXT NOT NULL,
    ip        TEXT NOT NULL,
    mac       TEXT NOT NULL,
    record    BLOB NOT NULL,
    PRIMARY KEY (network, container),
    UNIQUE (network, ip),
    UNIQUE (network, mac)
)""",
)


def connect(root: str, containers_dir: str) -> sqlite3.Connection:
    os.makedirs(root, exist_ok=True)
    db = sqlite3.connect(os.path.join(root, "pyc.db"), timeout=60, isolation_level=None)
    db.execute("PRAGMA busy_timeout = 60000")
    db.execute("PRAGMA foreign_keys = ON")
    if db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
        _create(db, containers_dir)
    # WAL: a commit is an append, synced at checkpoints; state a crash makes moot at worst.
    db.execute("PRAGMA synchronous = NORMAL")
    return db


def _create(db: sqlite3.Connection, containers_dir: str) -> None:
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("BEGIN IMMEDIATE")
    try:
        # Step by step from the version found: a store of an older pyc keeps its rows.
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:  # a new pyc.db (or another pyc made it meanwhile: version is then current)
            db.execute(SCHEMA)
            for data in _old_records(containers_dir):
                db.execute("INSERT OR IGNORE INTO containers VALUES (?, ?, ?, ?)", (data["Id"], data["Name"], str(data.get("Created", "")), packb(data)))
        if version < 2:
            for statement in VOLUMES:
                db.execute(statement)
        if version < 3:
            for table in NETWORKS:
                db.execute(table)
        if version < SCHEMA_VERSION:
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _old_records(containers_dir: str) -> list[dict[str, object]]:
    out = []
    try:
        ids = os.listdir(containers_dir)
    except FileNotFoundError:
        return []
    for cid in ids:
        try:
            with open(os.path.join(containers_dir, cid, "container.msgpack"), "rb") as f:
                data = unpackb(f.read())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("Id") == cid and data.get("Name"):
            out.append(data)
    return out
