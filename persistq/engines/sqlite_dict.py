"""The SQLite store of :class:`persistq.PDict`: ``str`` keys, ``bytes`` values.

The table is persist-queue's ``dict_{name} (key TEXT PRIMARY KEY, data BLOB)``,
so a ``PDict`` database written by persist-queue 1.x opens in place. Entries
are ordered by insertion, as a :class:`dict`: the table's implicit ``rowid``
grows with each new key, an upsert of an existing key keeps its ``rowid``
(and its place), and a deleted key that comes back goes to the end.

Every operation is one job on the connection's worker thread, inside one
``BEGIN IMMEDIATE`` (writes) or ``BEGIN`` (reads) transaction, so compound
operations (``pop``, ``popitem``, ``setdefault``, ``update``) are atomic across
threads and processes sharing the file.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence

from ._dict_ops import DictOperations
from .base import Entry, PageKind
from .sqlite import _HAS_RETURNING, Durability, SQLiteDatabase, _quote, validate_name

__all__ = ("Entry", "PageKind", "SQLiteDictStore")


class SQLiteDictStore(DictOperations, SQLiteDatabase):
    """Storage for one persistent mapping (the table ``dict_{name}``).

    Args:
        path: an existing database file, the directory of the database
            (created owner-only if missing), or ``":memory:"`` (see
            :func:`~persistq.engines.sqlite.locate_database`).
        name: the mapping's name (1-64 ASCII letters, digits, ``_``, ``-``).
        serializer_name: recorded when the table is created; opening it later
            with another serializer raises
            :class:`~persistq.errors.SerializerMismatch`.
        db_file_name: the database file in ``path`` (default ``data.db``).
        durability: ``"full"``, ``"normal"`` or ``"off"`` (see
            :class:`~persistq.engines.sqlite.SQLiteDatabase`).
        busy_timeout: seconds to wait for another connection's write lock.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        name: str,
        serializer_name: str,
        db_file_name: str | None = None,
        durability: Durability = "full",
        busy_timeout: float = 10.0,
    ) -> None:
        self.table = f"dict_{validate_name(name)}"
        super().__init__(path, db_file_name, durability, busy_timeout, self.table)
        self.serializer_name = serializer_name
        self._t = _quote(self.table)

    def _create(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            existed = self._table_exists(conn, self.table)
            conn.execute(f"CREATE TABLE IF NOT EXISTS {self._t} (key TEXT PRIMARY KEY, data BLOB)")
            self._check_serializer(conn, self.table, self.serializer_name, existed)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------- the jobs

    def _sql_get(self, conn: sqlite3.Connection, key: str) -> bytes | None:
        row = conn.execute(f"SELECT data FROM {self._t} WHERE key=?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def _sql_entry(self, conn: sqlite3.Connection, key: str) -> Entry | None:
        row = conn.execute(f"SELECT rowid, key, data FROM {self._t} WHERE key=?", (key,)).fetchone()
        return None if row is None else (row[0], row[1], bytes(row[2]))

    def _sql_set(self, conn: sqlite3.Connection, key: str, data: bytes) -> Entry | None:
        # The old entry is returned so a cancelled caller can put it back.
        old = self._sql_entry(conn, key)
        conn.execute(
            f"INSERT INTO {self._t} (key, data) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET data=excluded.data",
            (key, data),
        )
        return old

    def _sql_undo_set(self, conn: sqlite3.Connection, key: str, old: Entry | None) -> None:
        if old is None:
            conn.execute(f"DELETE FROM {self._t} WHERE key=?", (key,))
        else:
            conn.execute(f"UPDATE {self._t} SET data=? WHERE key=?", (old[2], key))

    def _sql_restore(self, conn: sqlite3.Connection, entries: Sequence[Entry]) -> None:
        # Back under its own rowid, so the entry regains its place in the order.
        conn.executemany(
            f"INSERT OR IGNORE INTO {self._t} (rowid, key, data) VALUES (?, ?, ?)",
            entries,
        )

    def _sql_pop(self, conn: sqlite3.Connection, key: str) -> Entry | None:
        if _HAS_RETURNING:
            row = conn.execute(
                f"DELETE FROM {self._t} WHERE key=? RETURNING rowid, key, data", (key,)
            ).fetchone()
            return None if row is None else (row[0], row[1], bytes(row[2]))
        entry = self._sql_entry(conn, key)  # pragma: no cover - SQLite < 3.35
        if entry is not None:  # pragma: no cover
            conn.execute(f"DELETE FROM {self._t} WHERE rowid=?", (entry[0],))
        return entry  # pragma: no cover

    def _sql_popitem(self, conn: sqlite3.Connection) -> Entry | None:
        row = conn.execute(f"SELECT rowid, key, data FROM {self._t} ORDER BY rowid DESC LIMIT 1").fetchone()
        if row is None:
            return None
        conn.execute(f"DELETE FROM {self._t} WHERE rowid=?", (row[0],))
        return (row[0], row[1], bytes(row[2]))

    def _sql_setdefault(self, conn: sqlite3.Connection, key: str, data: bytes) -> bytes | None:
        cur = conn.execute(
            f"INSERT INTO {self._t} (key, data) VALUES (?, ?) ON CONFLICT(key) DO NOTHING", (key, data)
        )
        if cur.rowcount == 1:
            return None
        return self._sql_get(conn, key)

    def _sql_undo_setdefault(self, conn: sqlite3.Connection, key: str, existing: bytes | None) -> None:
        if existing is None:
            conn.execute(f"DELETE FROM {self._t} WHERE key=?", (key,))

    def _sql_contains(self, conn: sqlite3.Connection, key: str) -> bool:
        return conn.execute(f"SELECT 1 FROM {self._t} WHERE key=?", (key,)).fetchone() is not None

    def _sql_len(self, conn: sqlite3.Connection) -> int:
        n: int = conn.execute(f"SELECT count(*) FROM {self._t}").fetchone()[0]
        return n

    def _sql_page(
        self, conn: sqlite3.Connection, kind: PageKind, after: int | None, limit: int | None
    ) -> list[Entry]:
        columns = "rowid, key, data" if kind == "items" else "rowid, key, NULL"
        where = "" if after is None else "WHERE rowid > ?"
        params: tuple[int, ...] = () if after is None else (after,)
        sql = f"SELECT {columns} FROM {self._t} {where} ORDER BY rowid"
        if limit is not None:
            sql += " LIMIT ?"
            params += (limit,)
        return [
            (r[0], r[1], b"" if r[2] is None else bytes(r[2])) for r in conn.execute(sql, params).fetchall()
        ]

    def _sql_clear(self, conn: sqlite3.Connection) -> int:
        return conn.execute(f"DELETE FROM {self._t}").rowcount

    def _sql_update(self, conn: sqlite3.Connection, pairs: Sequence[tuple[str, bytes]]) -> None:
        conn.executemany(
            f"INSERT INTO {self._t} (key, data) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET data=excluded.data",
            pairs,
        )

    # ------------------------------------------------------- the operations
