"""The MySQL / MariaDB store of :class:`persistq.PDict`: ``str`` keys, ``bytes`` values.

The same storage interface as :class:`~persistq.engines.sqlite_dict.SQLiteDictStore`
(``get``/``set``/``pop``/``delete``/``popitem``/``setdefault``/``contains``/
``count``/``page``/``clear``/``update``/``data_version``/``vacuum``), so the mapping kind
composes with either. The connection pool, retries, error translation and
password hygiene are :class:`~persistq.engines.mysql.MySQLDatabase`'s.

Table ``dict_{name}`` (InnoDB): ``seq BIGINT AUTO_INCREMENT PRIMARY KEY``,
``k VARBINARY(3072)`` (the key's UTF-8 bytes, compared byte for byte as Python
compares ``str``; 3072 bytes is the longest key InnoDB can index) with a UNIQUE
index, and ``data LONGBLOB``. Entries are ordered by insertion, as a
:class:`dict`: ``seq`` grows with each new key, an upsert of an existing key
keeps its ``seq`` (and its place), and a deleted key that comes back goes to
the end.

Every operation is one transaction in one worker hop, so compound operations
(``pop``, ``popitem``, ``setdefault``, ``update``) are atomic across
connections, processes and machines.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import KeyTooLong as KeyTooLong
from ._dict_ops import DictOperations
from .mysql import (
    DEFAULT_POOL_SIZE,
    Driver,
    MySQLDatabase,
    MySQLParams,
    _insert_many,
    _q,
    check_table_name,
)
from .sqlite import validate_name
from .sqlite_dict import Entry, PageKind

__all__ = ("MAX_KEY_BYTES", "KeyTooLong", "MySQLDictStore")

MAX_KEY_BYTES = 3072
"""The longest key a MySQL ``PDict`` stores, in UTF-8 bytes (InnoDB's longest index key)."""


def _stored_key(key: str) -> bytes:
    """The bytes ``key`` is stored as; a key too long to be stored raises :class:`KeyTooLong`."""
    raw = key.encode("utf-8")
    if len(raw) > MAX_KEY_BYTES:
        raise KeyTooLong(key, len(raw), MAX_KEY_BYTES)
    return raw


def _lookup_key(key: str) -> bytes | None:
    """The bytes to look ``key`` up by, or ``None`` for a key too long to be stored at all."""
    raw = key.encode("utf-8")
    return None if len(raw) > MAX_KEY_BYTES else raw


def _entry(r: Sequence[Any]) -> Entry:
    return (int(r[0]), bytes(r[1]).decode("utf-8"), b"" if r[2] is None else bytes(r[2]))


class MySQLDictStore(DictOperations, MySQLDatabase):
    """Storage for one persistent mapping (the table ``dict_{name}``) on a MySQL / MariaDB server.

    Every operation is one transaction; once it returns it is committed.
    Writes are cancel-atomic as :class:`~persistq.engines.sqlite_dict.SQLiteDictStore`'s.

    Args:
        params: server, account and database.
        name: the mapping's name (1-64 ASCII letters, digits, ``_``, ``-``;
            with the ``dict_`` prefix at most 64 characters).
        serializer_name: recorded when the table is created; opening it later
            with another serializer raises
            :class:`~persistq.errors.SerializerMismatch`.
        pool_size: connections (and, with PyMySQL, worker threads).
        lock_timeout: seconds a statement waits for a row lock.
        driver: ``"auto"`` (aiomysql on asyncio when installed, else
            PyMySQL on worker threads), ``"aiomysql"`` or ``"pymysql"``.

    Keys longer than :data:`MAX_KEY_BYTES` UTF-8 bytes cannot be stored:
    :meth:`set`, :meth:`setdefault` and :meth:`update` raise
    :class:`KeyTooLong` for them (before writing anything); reads find no
    such key.
    """

    def _stored_key(self, key: str) -> bytes:
        return _stored_key(key)

    def __init__(
        self,
        params: MySQLParams,
        name: str,
        serializer_name: str,
        pool_size: int = DEFAULT_POOL_SIZE,
        lock_timeout: float = 10.0,
        driver: Driver = "auto",
    ) -> None:
        self.table = check_table_name(f"dict_{validate_name(name)}")
        super().__init__(params, self.table, pool_size, lock_timeout, driver)
        self.serializer_name = serializer_name
        self._t = _q(self.table)

    def _create(self, cur: Any) -> None:
        existed = bool(self._table_columns(cur, self.table))
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {self._t} (seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, "
            f"k VARBINARY({MAX_KEY_BYTES}) NOT NULL, data LONGBLOB, UNIQUE INDEX k (k)) ENGINE=InnoDB"
        )
        self._check_serializer(cur, self.table, self.serializer_name, existed)

    # ------------------------------------------------------------- the jobs

    def _sql_get(self, cur: Any, key: str) -> bytes | None:
        raw = _lookup_key(key)
        if raw is None:
            return None
        cur.execute(f"SELECT data FROM {self._t} WHERE k = %s", (raw,))
        row = cur.fetchone()
        return None if row is None else bytes(row[0])

    def _sql_entry(self, cur: Any, raw: bytes) -> Entry | None:
        cur.execute(f"SELECT seq, k, data FROM {self._t} WHERE k = %s FOR UPDATE", (raw,))
        row = cur.fetchone()
        return None if row is None else _entry(row)

    def _sql_set(self, cur: Any, key: str, data: bytes) -> Entry | None:
        raw = _stored_key(key)
        # The old entry is returned so a cancelled caller can put it back.
        old = self._sql_entry(cur, raw)
        cur.execute(
            f"INSERT INTO {self._t} (k, data) VALUES (%s, %s) ON DUPLICATE KEY UPDATE data = VALUES(data)",
            (raw, data),
        )
        return old

    def _sql_undo_set(self, cur: Any, key: str, old: Entry | None) -> None:
        raw = _stored_key(key)
        if old is None:
            cur.execute(f"DELETE FROM {self._t} WHERE k = %s", (raw,))
        else:
            cur.execute(f"UPDATE {self._t} SET data = %s WHERE k = %s", (old[2], raw))

    def _sql_restore(self, cur: Any, entries: Sequence[Entry]) -> None:
        # Back under its own seq, so the entry regains its place in the order;
        # AUTO_INCREMENT never hands that seq to another key.
        if entries:
            cur.executemany(
                f"INSERT INTO {self._t} (seq, k, data) VALUES (%s, %s, %s) ON DUPLICATE KEY UPDATE seq = seq",
                [(e[0], e[1].encode("utf-8"), e[2]) for e in entries],
            )

    def _sql_pop(self, cur: Any, key: str) -> Entry | None:
        raw = _lookup_key(key)
        if raw is None:
            return None
        if self._server.returning:
            cur.execute(f"DELETE FROM {self._t} WHERE k = %s RETURNING seq, k, data", (raw,))
            row = cur.fetchone()
            return None if row is None else _entry(row)
        entry = self._sql_entry(cur, raw)
        if entry is not None:
            cur.execute(f"DELETE FROM {self._t} WHERE seq = %s", (entry[0],))
        return entry

    def _sql_popitem(self, cur: Any) -> Entry | None:
        # FOR UPDATE, not SKIP LOCKED: the newest entry may be locked by a set
        # of its key, which must not make the mapping look empty. A popper
        # that waited for another's delete reads the next newest entry.
        cur.execute(f"SELECT seq, k, data FROM {self._t} ORDER BY seq DESC LIMIT 1 FOR UPDATE")
        row = cur.fetchone()
        if row is None:
            return None
        cur.execute(f"DELETE FROM {self._t} WHERE seq = %s", (row[0],))
        return _entry(row)

    def _sql_setdefault(self, cur: Any, key: str, data: bytes) -> bytes | None:
        raw = _stored_key(key)
        if cur.execute(f"INSERT IGNORE INTO {self._t} (k, data) VALUES (%s, %s)", (raw, data)):
            return None
        # The duplicate-key check locked the existing row: it is still there.
        return self._sql_get(cur, key)

    def _sql_undo_setdefault(self, cur: Any, key: str, existing: bytes | None) -> None:
        if existing is None:
            cur.execute(f"DELETE FROM {self._t} WHERE k = %s", (_stored_key(key),))

    def _sql_contains(self, cur: Any, key: str) -> bool:
        raw = _lookup_key(key)
        if raw is None:
            return False
        cur.execute(f"SELECT 1 FROM {self._t} WHERE k = %s", (raw,))
        return cur.fetchone() is not None

    def _sql_len(self, cur: Any) -> int:
        cur.execute(f"SELECT COUNT(*) FROM {self._t}")
        return int(cur.fetchone()[0])

    def _sql_page(self, cur: Any, kind: PageKind, after: int | None, limit: int | None) -> list[Entry]:
        columns = "seq, k, data" if kind == "items" else "seq, k, NULL"
        where = "" if after is None else "WHERE seq > %s"
        params: tuple[int, ...] = () if after is None else (after,)
        sql = f"SELECT {columns} FROM {self._t} {where} ORDER BY seq"
        if limit is not None:
            sql += " LIMIT %s"
            params += (limit,)
        cur.execute(sql, params)
        return [_entry(r) for r in cur.fetchall()]

    def _sql_clear(self, cur: Any) -> int:
        return int(cur.execute(f"DELETE FROM {self._t}"))

    def _sql_update(self, cur: Any, pairs: Sequence[tuple[bytes, bytes]]) -> None:
        # One multi-row upsert per statement: a key given twice keeps the last value.
        _insert_many(cur, self._t, ("k", "data"), pairs, " ON DUPLICATE KEY UPDATE data = VALUES(data)")

    # ------------------------------------------------------- the operations

    def _sql_data_version(self, cur: Any) -> int:
        cur.execute(
            f"SELECT COUNT(*), MAX(seq), BIT_XOR(CRC32(CONCAT(seq, ':', k, ':', COALESCE(data, '')))) "
            f"FROM {self._t}"
        )
        return hash(tuple(str(v) for v in cur.fetchone()))

    async def data_version(self) -> int:
        """A number that changes when anyone commits a change to the mapping.

        InnoDB keeps no cheap change counter, so this reads the whole table (a
        checksum of every entry); :class:`~persistq.PDict` never calls it.
        """
        return await self._run(self._sql_data_version, kind="read")

    def _tables(self) -> tuple[str, ...]:
        return (self._t,)
