"""The command line: ``persistq`` (console script) and ``python -m persistq``.

Commands inspect and maintain queues on disk or on a MySQL server: ``info``
(alias ``stats``), ``peek``, ``requeue`` (alias ``redrive``), ``purge``,
``verify``, ``vacuum`` (alias ``compact``) and ``migrate``. A TARGET is an
SQLite queue directory (``data.db`` inside) or database file, a file-queue
directory, or a MySQL DSN (``mysql://user:pass@host:port/db?table=name``).

Inspection (``info``, ``peek``, ``verify``) opens SQLite databases read-only
and reads file queues through the file engine's inspection functions
(:func:`persistq.engines.file.read_state`, ``scan_segments``), without taking
the queue's lock, so it never changes a queue and works while producers and
consumers run. Changes go through the public queue classes (``requeue``,
file-queue ``purge`` and ``compact``) or through one SQL transaction
(SQLite/MySQL ``purge``, SQLite ``vacuum``).

Items are decoded with the serializer the queue recorded. ``json``,
``msgpack`` and ``cbor2`` are decoded freely; ``pickle`` only with
``--trust``, because unpickling runs code stored in the queue.

Exit codes: 0 success, 1 the operation failed or found a problem (message on
stderr), 2 bad usage.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import click

from . import serializers as _serializers
from .errors import CorruptionError, PersistQError, QueueLocked, SerializerMismatch, StorageError

if TYPE_CHECKING:
    from .engines.file import QueueState

__all__ = ("cli", "main")

F = TypeVar("F", bound=Callable[..., Any])

_SERIALIZERS = ("pickle", "json", "msgpack", "cbor2")
_SAFE = frozenset({"json", "msgpack", "cbor2"})
"""Serializers whose decoding never runs code stored in the queue."""
_SQLITE_MAGIC = b"SQLite format 3\x00"
_BUSY_MS = 10_000
_STATUS = {0: "ready", 1: "ready", 2: "in_flight", 3: "delayed", 5: "acked", 9: "failed"}
_PEEK_STATUS = {
    "ready": (0, 1),
    "in-flight": (2,),
    "delayed": (3,),
    "failed": (9,),
    "acked": (5,),
    "all": (0, 1, 2, 3, 5, 9),
}


# ----------------------------------------------------------------- errors


class _Failed(click.ClickException):
    """An operational failure: printed as ``Error: …``, exit code 1."""

    exit_code = 1


class _Problems(click.ClickException):
    """A check that found problems (already reported): exit code 1."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        """Print nothing more than ``Error: message``."""
        click.echo(f"Error: {self.format_message()}", err=True)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, QueueLocked):
        return f"{exc} (is a consumer or producer running? stop it first)"
    if isinstance(exc, CorruptionError):
        return f"corrupt queue: {exc} (run 'persistq verify' for details)"
    if isinstance(exc, SerializerMismatch):
        return str(exc)
    if isinstance(exc, sqlite3.DatabaseError) and "not a database" in str(exc):
        return f"corrupt queue: {exc}"
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc)):
        return f"{exc}: another process held the write lock for {_BUSY_MS // 1000} s; try again"
    if isinstance(exc, FileNotFoundError):
        return f"{exc.filename or exc}: no such file or directory"
    if isinstance(exc, OSError) and not isinstance(exc, StorageError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror}"
    return str(exc) or type(exc).__name__


class _Group(click.Group):
    """Turns persistq, SQLite and OS errors of any command into exit code 1 with one line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (PersistQError, OSError, sqlite3.Error) as exc:
            raise _Failed(_describe(exc)) from exc


# ----------------------------------------------------------------- targets


@dataclasses.dataclass(frozen=True)
class _Target:
    """What a TARGET argument names."""

    engine: str
    """``sqlite``, ``file``, ``legacy-file`` (persist-queue 1.x file queue) or ``mysql``."""
    location: str
    """The database file, the queue directory, or the DSN."""

    @property
    def shown(self) -> str:
        """The location for messages (a DSN without its password)."""
        if self.engine == "mysql":
            return _safe_dsn(self.location)
        return self.location


def _resolve(target: str, db_file: str | None) -> _Target:
    if "://" in target:
        if target.split("://", 1)[0].lower() not in ("mysql", "mariadb", "mysql+pymysql"):
            raise click.BadParameter(f"{target.split('://', 1)[0]}:// is not supported (mysql:// is)")
        return _Target("mysql", target)
    if not os.path.exists(target):
        raise _Failed(f"{target}: no such file or directory")
    if os.path.isdir(target):
        from .engines.file import META_FILE

        names = os.listdir(target)
        if db_file is not None:
            path = os.path.join(target, db_file)
            if not os.path.isfile(path):
                raise _Failed(f"{path}: no such file")
            return _Target("sqlite", path)
        if META_FILE in names or any(n.endswith(".seg") for n in names):
            return _Target("file", target)
        if "info" in names or any(len(n) == 6 and n[0] == "q" and n[1:].isdigit() for n in names):
            return _Target("legacy-file", target)
        if "data.db" in names:
            return _Target("sqlite", os.path.join(target, "data.db"))
        dbs = sorted(n for n in names if n.endswith(".db") and os.path.isfile(os.path.join(target, n)))
        if len(dbs) == 1:
            return _Target("sqlite", os.path.join(target, dbs[0]))
        hint = f" (several databases: {', '.join(dbs)}; pick one with --db-file)" if dbs else ""
        raise _Failed(
            f"{target}: not a persistq queue directory (no data.db, {META_FILE} or segment files){hint}"
        )
    with open(target, "rb") as f:
        head = f.read(len(_SQLITE_MAGIC))
    if head and head != _SQLITE_MAGIC:
        raise _Failed(f"corrupt queue: {target} is not an SQLite database (bad file header)")
    return _Target("sqlite", target)


def _safe_dsn(dsn: str) -> str:
    from .engines.mysql import parse_dsn

    try:
        p = parse_dsn(dsn)
    except ValueError:
        return "mysql://…"
    user = quote(str(p.get("user", "")), safe="")
    return f"mysql://{user}@{p.get('host', '')}:{p.get('port', 3306)}/{p.get('database', '')}"


def _target_args(f: F) -> F:
    """TARGET and the options every queue command takes."""
    f = click.option(
        "--table",
        "table",
        metavar="NAME",
        help="Only this queue: a table name (queue_jobs) or a queue name (jobs).",
    )(f)
    f = click.option(
        "--db-file",
        metavar="NAME",
        help="The database file inside an SQLite queue directory (default: data.db).",
    )(f)
    f = click.argument("target", metavar="TARGET")(f)
    return f


def _json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")(f)


# ----------------------------------------------------------------- SQLite


@dataclasses.dataclass(frozen=True)
class _Table:
    """One queue (or PDict) table of an SQLite or MySQL database."""

    table: str
    name: str
    kind: str
    ack: bool
    order: str
    serializer: str | None


def _sql_kinds() -> list[tuple[str, str, bool, str, bool]]:
    """(table prefix, class name, ack?, order, legacy?), longest prefix first, from the queue classes.

    ``legacy``: persist-queue's async class of the kind used the bare prefix
    (``queue``, ``filo_queue``, ``unique_queue``) as its table, whatever its name.
    """
    from .queues import ack, fifo, priority, unique

    classes: list[Any] = [
        ack.SQLiteAckQueue,
        ack.FILOSQLiteAckQueue,
        ack.UniqueAckQ,
        ack.PriorityAckQueue,
        fifo.SQLiteQueue,
        fifo.FILOSQLiteQueue,
        unique.UniqueQ,
        priority.PriorityQueue,
    ]
    kinds = [
        (
            f"{c._TABLE_PREFIX}_",
            c.KIND_NAME,
            issubclass(c, ack.SQLiteAckQueue),
            c._ORDER,
            c._ASYNC_LEGACY_TABLE,
        )
        for c in classes
    ]
    kinds.append(("dict_", "PDict", False, "key", False))
    return sorted(kinds, key=lambda k: -len(k[0]))


def _classify(table: str, serializers: dict[str, str]) -> _Table | None:
    from .engines.base import NAME_PATTERN as _NAME

    for prefix, kind, is_ack, order, legacy in _sql_kinds():
        if table.startswith(prefix) and _NAME.fullmatch(table[len(prefix) :]):
            return _Table(table, table[len(prefix) :], kind, is_ack, order, serializers.get(table))
        if legacy and table == prefix[:-1]:
            # persistq opens it as the queue named "default" (when queue_default is absent).
            return _Table(table, "default", kind, is_ack, order, serializers.get(table))
    return None


def _q(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


@contextlib.contextmanager
def _sqlite_ro(path: str) -> Iterator[sqlite3.Connection]:
    """A read-only connection: inspection never changes a queue."""
    try:
        conn = sqlite3.connect(f"file:{quote(os.path.abspath(path))}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error as exc:
        raise _Failed(f"{path}: cannot open the database: {exc}") from exc
    try:
        conn.execute(f"PRAGMA busy_timeout={_BUSY_MS}")
        yield conn
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError) and "locked" not in str(exc):
            raise _Failed(f"{path}: {exc}") from exc
        raise _Failed(f"{path}: {_describe(exc)}") from exc
    finally:
        conn.close()


@contextlib.contextmanager
def _sqlite_rw(path: str) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(path, timeout=_BUSY_MS / 1000, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def _sqlite_tables(conn: sqlite3.Connection) -> list[_Table]:
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
    serializers: dict[str, str] = {}
    if "persistq_meta" in names:
        serializers = dict(conn.execute("SELECT tbl, value FROM persistq_meta WHERE key='serializer'"))
    return [t for n in names if (t := _classify(n, serializers)) is not None]


def _pick(tables: list[_Table], table: str | None, where: str) -> list[_Table]:
    if table is None:
        return tables
    chosen = [t for t in tables if t.table == table] or [t for t in tables if t.name == table]
    if not chosen:
        have = ", ".join(t.table for t in tables) or "none"
        raise _Failed(f"{where}: no queue table {table!r} (tables: {have})")
    if len(chosen) > 1:
        raise _Failed(
            f"{where}: {table!r} names several tables ({', '.join(t.table for t in chosen)}); "
            "pass the table name"
        )
    return chosen


def _one(tables: list[_Table], table: str | None, where: str) -> _Table:
    chosen = _pick(tables, table, where)
    if not chosen:
        raise _Failed(f"{where}: holds no queue")
    if len(chosen) > 1:
        raise _Failed(
            f"{where} holds several queues ({', '.join(t.table for t in chosen)}); pick one with --table"
        )
    return chosen[0]


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in conn.execute(f"PRAGMA table_info({_q(table)})")}


def _has_table(conn: sqlite3.Connection, table: str) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)).fetchone()
    return row is not None


def _empty_counts(t: _Table) -> dict[str, int]:
    if t.kind == "PDict":
        return {"entries": 0}
    if t.ack:
        return {"ready": 0, "in_flight": 0, "expired": 0, "delayed": 0, "failed": 0, "acked": 0}
    return {"ready": 0, "in_flight": 0}


def _sqlite_stats(conn: sqlite3.Connection, t: _Table, dbstat: bool) -> dict[str, Any]:
    qt = _q(t.table)
    counts = _empty_counts(t)
    oldest: float | None = None
    if t.kind == "PDict":
        counts["entries"] = conn.execute(f"SELECT count(*) FROM {qt}").fetchone()[0]
    elif t.ack:
        cols = _columns(conn, t.table)
        for status, n, ts in conn.execute(
            f"SELECT status, count(*), min(timestamp) FROM {qt} GROUP BY status"
        ):
            key = _STATUS.get(status, "ready")
            counts[key] += n
            if key in ("ready", "in_flight", "delayed") and ts is not None:
                oldest = ts if oldest is None else min(oldest, ts)
        if "pq_lease" in cols:
            counts["expired"] = conn.execute(
                f"SELECT count(*) FROM {qt} WHERE status=2 AND pq_lease <= ?", (time.time(),)
            ).fetchone()[0]
    else:
        n, ts = conn.execute(f"SELECT count(*), min(timestamp) FROM {qt}").fetchone()
        counts["ready"], oldest = n, ts
        pending = f"persistq_pending_{t.table}"
        if _has_table(conn, pending):
            n, ts = conn.execute(f"SELECT count(*), min(timestamp) FROM {_q(pending)}").fetchone()
            counts["in_flight"] = n
            if ts is not None:
                oldest = ts if oldest is None else min(oldest, ts)
    size = None
    if dbstat:
        size = conn.execute(
            "SELECT sum(pgsize) FROM dbstat WHERE name IN "
            "(SELECT name FROM sqlite_master WHERE tbl_name IN (?, ?))",
            (t.table, f"persistq_pending_{t.table}"),
        ).fetchone()[0]
    return {
        "table": t.table,
        "name": t.name,
        "kind": t.kind,
        "engine": "sqlite",
        "serializer": t.serializer,
        "durability": None,
        "counts": counts,
        "total": sum(v for k, v in counts.items() if k != "expired"),
        "oldest_age_seconds": None if oldest is None else round(max(0.0, time.time() - oldest), 3),
        "bytes": size,
    }


def _disk_bytes(paths: Sequence[str]) -> int:
    total = 0
    for p in paths:
        with contextlib.suppress(OSError):
            total += os.path.getsize(p)
    return total


def _sqlite_files(db: str) -> list[str]:
    return [db, f"{db}-wal", f"{db}-shm"]


def _sqlite_info(target: _Target, table: str | None) -> dict[str, Any]:
    with _sqlite_ro(target.location) as conn:
        journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
        tables = _pick(_sqlite_tables(conn), table, target.location)
        try:
            conn.execute("SELECT 1 FROM dbstat LIMIT 1").fetchall()
            dbstat = True
        except sqlite3.Error:
            dbstat = False
        queues = [_sqlite_stats(conn, t, dbstat) for t in tables]
    return {
        "target": target.location,
        "engine": "sqlite",
        "database": os.path.abspath(target.location),
        "journal_mode": journal,
        "durability": None,
        "bytes_on_disk": _disk_bytes(_sqlite_files(target.location)),
        "queues": queues,
    }


# ----------------------------------------------------------------- file queue


def _file_state(path: str) -> QueueState:
    from .engines.file import read_state

    try:
        return read_state(path)
    except CorruptionError as exc:
        raise _Failed(f"corrupt queue: {exc}") from exc


def _file_info(target: _Target) -> dict[str, Any]:
    from .engines.file import is_locked, scan_segments

    path = target.location
    state = _file_state(path)
    segments, problems = scan_segments(path, state)
    ready = sum(len(s.records) for s in segments)
    corrupt = sum(len(s.corrupt) for s in segments)
    files = [os.path.join(path, n) for n in os.listdir(path)]
    queue = {
        "table": None,
        "name": os.path.basename(os.path.abspath(path)),
        "kind": "Queue",
        "engine": "file",
        "serializer": state.serializer,
        "durability": None,
        "chunksize": state.chunksize,
        "segments": len(segments),
        "counts": {"ready": ready, "corrupt": corrupt},
        "total": ready + corrupt,
        "oldest_age_seconds": None,
        "bytes": _disk_bytes([f for f in files if f.endswith(".seg")]),
        "locked": is_locked(path),
        "problems": problems,
    }
    return {
        "target": path,
        "engine": "file",
        "durability": None,
        "bytes_on_disk": _disk_bytes(files),
        "queues": [queue],
    }


# ----------------------------------------------------------------- MySQL


@contextlib.contextmanager
def _mysql(dsn: str) -> Iterator[tuple[Any, dict[str, Any]]]:
    from .engines.mysql import _pymysql, parse_dsn

    try:
        p = parse_dsn(dsn)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="TARGET") from None
    pymysql = _pymysql()
    try:
        conn = pymysql.connect(
            host=p.get("host", "localhost"),
            port=p.get("port", 3306),
            user=p.get("user", ""),
            password=p.get("password", ""),
            database=p.get("database"),
            connect_timeout=10,
            autocommit=True,
        )
    except pymysql.MySQLError as exc:
        raise _Failed(f"{_safe_dsn(dsn)}: cannot connect: {exc.args[-1] if exc.args else exc}") from None
    try:
        yield conn, p
    finally:
        conn.close()


def _mysql_tables(conn: Any, dsn_table: str | None, table: str | None) -> list[_Table]:
    with conn.cursor() as cur:
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()")
        names = sorted(r[0] for r in cur.fetchall())
        serializers: dict[str, str] = {}
        if "persistq_meta" in names:
            cur.execute("SELECT tbl, value FROM persistq_meta WHERE `key` = 'serializer'")
            serializers = {r[0]: r[1] for r in cur.fetchall()}
    tables = [
        _Table(n, n[len("queue_") :], "MySQLQueue", False, "fifo", serializers.get(n))
        for n in names
        if n.startswith("queue_")
    ]
    return _pick(tables, table or (f"queue_{dsn_table}" if dsn_table else None), "the database")


def _mysql_info(target: _Target, table: str | None) -> dict[str, Any]:
    from .engines.mysql import _pending_table

    with _mysql(target.location) as (conn, p):
        tables = _mysql_tables(conn, p.get("name"), table)
        queues = []
        with conn.cursor() as cur:
            cur.execute("SELECT @@innodb_flush_log_at_trx_commit")
            flush = cur.fetchone()[0]
            durability = f"innodb_flush_log_at_trx_commit={flush}"
            total_bytes = 0
            for t in tables:
                cur.execute(f"SELECT count(*), min(timestamp) FROM `{t.table}`")
                n, oldest = cur.fetchone()
                pending = _pending_table(t.table)
                cur.execute(
                    "SELECT table_name, data_length + index_length FROM information_schema.tables "
                    "WHERE table_schema = DATABASE() AND table_name IN (%s, %s)",
                    (t.table, pending),
                )
                sizes = {r[0]: int(r[1] or 0) for r in cur.fetchall()}
                in_flight = 0
                if pending in sizes:
                    cur.execute(f"SELECT count(*), min(timestamp) FROM `{pending}`")
                    in_flight, pts = cur.fetchone()
                    if pts is not None:
                        oldest = pts if oldest is None else min(oldest, pts)
                total_bytes += sum(sizes.values())
                queues.append(
                    {
                        "table": t.table,
                        "name": t.name,
                        "kind": t.kind,
                        "engine": "mysql",
                        "serializer": t.serializer,
                        "durability": "full" if str(flush) == "1" else durability,
                        "counts": {"ready": int(n), "in_flight": int(in_flight)},
                        "total": int(n) + int(in_flight),
                        "oldest_age_seconds": None
                        if oldest is None
                        else round(max(0.0, time.time() - float(oldest)), 3),
                        "bytes": sum(sizes.values()),
                    }
                )
    return {
        "target": target.shown,
        "engine": "mysql",
        "durability": durability,
        "bytes_on_disk": total_bytes,
        "queues": queues,
    }


# ----------------------------------------------------------------- output


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    for unit, span, sub, subspan in (("d", 86400, "h", 3600), ("h", 3600, "m", 60), ("m", 60, "s", 1)):
        if s >= span:
            return f"{s // span}{unit} {(s % span) // subspan}{sub}"
    return f"{seconds:.1f}s"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _print_info(info: dict[str, Any]) -> None:
    where = info.get("database", info["target"])
    details = [info["engine"]]
    if info.get("journal_mode"):
        details.append(f"journal {info['journal_mode']}")
    details.append(
        f"durability {info['durability']}" if info.get("durability") else "durability set by each opener"
    )
    details.append(f"{_size(info['bytes_on_disk'])} on disk")
    click.echo(f"{where}  ({', '.join(details)})")
    queues = info["queues"]
    if not queues:
        click.echo("no queues")
        return
    cols = ["ready", "in_flight", "expired", "delayed", "failed", "acked", "corrupt", "entries"]
    used = [c for c in cols if any(c in q["counts"] for q in queues)]
    head = ["TABLE", "KIND", "SERIALIZER", *(c.upper().replace("_", "-") for c in used), "OLDEST", "SIZE"]
    rows = [head]
    for q in queues:
        rows.append(
            [
                q["table"] or q["name"],
                q["kind"],
                q["serializer"] or "(not recorded)",
                *(str(q["counts"][c]) if c in q["counts"] else "-" for c in used),
                _age(q["oldest_age_seconds"]),
                _size(q["bytes"]),
            ]
        )
    click.echo(_table(rows))
    for q in queues:
        if q.get("locked"):
            click.echo(f"{q['name']}: open in another process (persistq.lock is held)")
        for problem in q.get("problems", []):
            click.echo(f"problem: {problem}")
        if q["engine"] == "file":
            click.echo("file-queue records carry no timestamp: OLDEST is not known")
        if q["serializer"] is None and q["kind"] != "PDict":
            click.echo(
                f"{q['table']}: written by persist-queue (serializer not recorded; its default is pickle)"
            )


def _emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=_jsonable, ensure_ascii=False))


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"base64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return repr(value)


# ----------------------------------------------------------------- decoding


@dataclasses.dataclass
class _Decoder:
    """Decodes stored bytes with a queue's serializer, under the trust policy."""

    name: str | None
    trust: bool
    raw: bool
    refused: bool = False
    unavailable: str | None = None

    def decode(self, data: bytes) -> tuple[bool, Any]:
        """Return ``(decoded?, value)``; an item not decoded comes back as its bytes."""
        name = self.name
        if self.raw or name is None:
            return False, bytes(data)
        if name == "pickle" and not self.trust:
            self.refused = True
            return False, bytes(data)
        if name not in _SERIALIZERS:
            self.unavailable = f"no built-in serializer named {name!r}"
            return False, bytes(data)
        try:
            return True, getattr(_serializers, name).loads(bytes(data))
        except PersistQError as exc:
            self.unavailable = str(exc)
            return False, bytes(data)
        except Exception as exc:  # noqa: BLE001 - shown, not raised: the queue is as it is
            return False, f"<undecodable with {name}: {type(exc).__name__}: {exc}>"

    def notes(self) -> list[str]:
        """What the user should know about items left undecoded."""
        out = []
        if self.refused:
            out.append(
                "items are pickles and were not decoded: unpickling runs code stored in the queue; "
                "pass --trust if you trust whoever wrote this queue"
            )
        if self.unavailable:
            out.append(f"items were not decoded: {self.unavailable}")
        if self.name is None and not self.raw:
            out.append("the serializer is not recorded (a persist-queue table); pass --serializer NAME")
        return out


def _preview(value: Any, decoded: bool, width: int | None) -> str:
    if decoded:
        text = repr(value)
    elif isinstance(value, bytes):
        text = f"<{len(value)} bytes> {value[:48]!r}{'…' if len(value) > 48 else ''}"
    else:
        text = str(value)
    if width is not None and len(text) > width:
        text = text[: width - 1] + "…"
    return text


def _sqlite_peek(conn: sqlite3.Connection, t: _Table, n: int, status: str) -> list[dict[str, Any]]:
    qt = _q(t.table)
    order = {"fifo": "_id ASC", "filo": "_id DESC", "priority": "priority ASC, _id ASC", "key": "rowid"}[
        t.order
    ]
    if t.kind == "PDict":
        rows = conn.execute(f"SELECT key, data FROM {qt} ORDER BY rowid LIMIT ?", (n,)).fetchall()
        return [{"key": k, "data": d} for k, d in rows]
    prio = ", priority" if t.order == "priority" else ""
    if t.ack:
        cols = _columns(conn, t.table)
        attempts = "pq_attempts" if "pq_attempts" in cols else "NULL"
        statuses = _PEEK_STATUS[status]
        marks = ", ".join("?" * len(statuses))
        rows = conn.execute(
            f"SELECT _id, data, timestamp, status, {attempts}{prio} FROM {qt} "
            f"WHERE status IN ({marks}) ORDER BY {order} LIMIT ?",
            (*statuses, n),
        ).fetchall()
        return [
            {
                "id": r[0],
                "data": r[1],
                "timestamp": r[2],
                "status": _STATUS.get(r[3], str(r[3])),
                "attempts": r[4],
                **({"priority": r[5]} if prio else {}),
            }
            for r in rows
        ]
    if status not in ("ready", "all"):
        return []
    rows = conn.execute(
        f"SELECT _id, data, timestamp{prio} FROM {qt} ORDER BY {order} LIMIT ?", (n,)
    ).fetchall()
    return [
        {"id": r[0], "data": r[1], "timestamp": r[2], **({"priority": r[3]} if prio else {})} for r in rows
    ]


# ----------------------------------------------------------------- opening with the public classes


class _Opaque:
    """A serializer that passes bytes through, under the name the queue recorded.

    Lets the CLI open a queue with its public class (whose open checks the
    serializer's name) without decoding, so no stored pickle is ever run.
    """

    def __init__(self, name: str) -> None:
        self.NAME = name

    def dumps(self, value: Any, sort_keys: bool = False) -> bytes:
        """Bytes stay bytes."""
        return bytes(value)

    def loads(self, data: bytes) -> bytes:
        """Bytes stay bytes."""
        return bytes(data)


def _sync_queue(target: _Target, t: _Table, **kwargs: Any) -> Any:
    from . import sync

    cls = getattr(sync, t.kind)
    directory, db_file = os.path.split(os.path.abspath(target.location))
    return cls(
        directory,
        name=t.name,
        serializer=_Opaque(t.serializer or "pickle"),
        db_file_name=db_file,
        **kwargs,
    )


# ----------------------------------------------------------------- the commands


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="persistq", prog_name="persistq", message="%(prog)s %(version)s")
def cli() -> None:
    """Inspect and maintain persistq queues.

    TARGET is an SQLite queue directory (holding data.db) or database file, a
    file-queue directory, or a MySQL DSN (mysql://user:pass@host:3306/db?table=name).
    Exit codes: 0 ok, 1 the operation failed or found a problem, 2 bad usage.
    """


def _info(target: str, db_file: str | None, table: str | None, as_json: bool) -> None:
    t = _resolve(target, db_file)
    if t.engine == "legacy-file":
        from .engines.file import MIGRATE_HINT

        info: dict[str, Any] = {
            "target": target,
            "engine": "persist-queue-file",
            "durability": None,
            "bytes_on_disk": _disk_bytes([os.path.join(target, n) for n in os.listdir(target)]),
            "queues": [],
            "hint": f"a persist-queue 1.x file queue; convert it once with: {MIGRATE_HINT}",
        }
        if as_json:
            _emit_json(info)
        else:
            click.echo(f"{target}: {info['hint']}")
        return
    if t.engine == "sqlite":
        info = _sqlite_info(t, table)
    elif t.engine == "file":
        if table is not None:
            raise click.UsageError("--table does not apply to a file queue (one queue per directory)")
        info = _file_info(t)
    else:
        info = _mysql_info(t, table)
    if as_json:
        _emit_json(info)
    else:
        _print_info(info)


_INFO_HELP = """Show each queue's kind, serializer, counts per status, oldest item age and size.

Counts: READY items wait for a get; IN-FLIGHT were got and not yet acked or
task_done; EXPIRED of those have an expired lease; DELAYED were nacked with a
delay; FAILED are dead letters; ACKED are kept up to max_acked_length.
Opens the queue read-only: safe while producers and consumers run.
"""


@cli.command("info", help=_INFO_HELP)
@_target_args
@_json_option
def info_command(target: str, db_file: str | None, table: str | None, as_json: bool) -> None:
    _info(target, db_file, table, as_json)


@cli.command("stats", help="Same as info. " + _INFO_HELP)
@_target_args
@_json_option
def stats_command(target: str, db_file: str | None, table: str | None, as_json: bool) -> None:
    _info(target, db_file, table, as_json)


@cli.command("peek")
@_target_args
@click.option(
    "-n", "count", type=click.IntRange(min=1), default=10, show_default=True, help="How many items."
)
@click.option(
    "--status",
    type=click.Choice(sorted(_PEEK_STATUS)),
    default="ready",
    show_default=True,
    help="Ack queues: which items to show.",
)
@click.option("--trust", is_flag=True, help="Decode pickle items (unpickling runs code stored in the queue).")
@click.option("--raw", is_flag=True, help="Show stored bytes; decode nothing.")
@click.option(
    "--serializer",
    type=click.Choice(_SERIALIZERS),
    help="Decode with this serializer (for tables whose serializer is not recorded).",
)
@click.option("--full", is_flag=True, help="Do not shorten long items.")
@_json_option
def peek_command(
    target: str,
    db_file: str | None,
    table: str | None,
    count: int,
    status: str,
    trust: bool,
    raw: bool,
    serializer: str | None,
    full: bool,
    as_json: bool,
) -> None:
    """Show the next items in get order, without taking them.

    json, msgpack and cbor2 items are decoded. pickle items are shown as bytes
    unless --trust is given: unpickling runs code chosen by whoever wrote the
    queue, and a tool that inspects a queue must not run it by default.
    """
    t = _resolve(target, db_file)
    if t.engine == "legacy-file":
        raise _Failed(_legacy_message(target))
    items: list[dict[str, Any]]
    if t.engine == "sqlite":
        with _sqlite_ro(t.location) as conn:
            q = _one(_sqlite_tables(conn), table, t.location)
            items = _sqlite_peek(conn, q, count, status)
        recorded = q.serializer
        where = q.table
    elif t.engine == "file":
        from .engines.file import scan_segments

        state = _file_state(t.location)
        segments, _ = scan_segments(t.location, state)
        items = []
        for s in segments:
            for off, payload in s.records:
                items.append({"segment": os.path.basename(s.path), "offset": off, "data": payload})
        items = items[:count]
        recorded, where = state.serializer, t.location
    else:
        with _mysql(t.location) as (conn, p):
            q = _one(_mysql_tables(conn, p.get("name"), table), None, t.shown)
            with conn.cursor() as cur:
                cur.execute(f"SELECT _id, data, timestamp FROM `{q.table}` ORDER BY _id LIMIT %s", (count,))
                items = [{"id": r[0], "data": r[1], "timestamp": r[2]} for r in cur.fetchall()]
        recorded, where = q.serializer, q.table
    decoder = _Decoder(serializer or recorded, trust, raw)
    for item in items:
        data = item.pop("data")
        item["size"] = len(data)
        item["decoded"], item["data"] = decoder.decode(data)
    if as_json:
        _emit_json({"target": t.shown, "table": where, "serializer": decoder.name, "items": items})
    else:
        if not items:
            click.echo(f"{where}: no items")
        for item in items:
            label = item.get("id", item.get("key", f"{item.get('segment')}@{item.get('offset')}"))
            extra = []
            if "status" in item:
                extra.append(f"{item['status']}, attempts {item['attempts']}")
            if "priority" in item:
                extra.append(f"priority {item['priority']}")
            if item.get("timestamp") is not None:
                extra.append(f"age {_age(time.time() - item['timestamp'])}")
            suffix = f"  [{'; '.join(extra)}]" if extra else ""
            click.echo(f"{label}{suffix}  {_preview(item['data'], item['decoded'], None if full else 200)}")
    for note in decoder.notes():
        click.echo(f"note: {note}", err=True)


def _legacy_message(target: str) -> str:
    from .engines.file import MIGRATE_HINT

    return f"{target} is a persist-queue 1.x file queue; convert it once with: {MIGRATE_HINT}"


def _ack_table(target: str, db_file: str | None, table: str | None) -> tuple[_Target, _Table]:
    t = _resolve(target, db_file)
    if t.engine != "sqlite":
        raise _Failed(f"{t.shown}: only SQLite ack queues have failed or in-flight items to requeue")
    with _sqlite_ro(t.location) as conn:
        tables = _sqlite_tables(conn)
        if table is None:
            tables = [x for x in tables if x.ack]
        q = _one(tables, table, t.location)
    if not q.ack:
        raise _Failed(f"{q.table} is a {q.kind}, not an ack queue: it has no failed items or leases")
    return t, q


def _requeue(
    target: str,
    db_file: str | None,
    table: str | None,
    failed: bool,
    expired: bool,
    all_in_flight: bool,
    ids: tuple[int, ...],
    yes: bool,
    as_json: bool,
) -> None:
    t, q = _ack_table(target, db_file, table)
    if not (failed or expired or all_in_flight):
        failed = expired = True
    if ids and not failed:
        raise click.UsageError("--id selects failed items; it needs --failed")
    if all_in_flight and not yes:
        click.confirm(
            f"Give back every in-flight item of {q.table}, including those live consumers are working on "
            "(they may be processed twice)?",
            abort=True,
        )
    result = {"table": q.table, "failed_requeued": 0, "in_flight_returned": 0}
    with _sqlite_ro(t.location) as conn:
        before = _sqlite_stats(conn, q, False)["counts"]["in_flight"]
    # auto_resume at open gives back items whose lease expired or whose
    # consumer process is gone; a live consumer's items are left alone.
    with _sync_queue(t, q, auto_resume=expired) as queue:
        if failed:
            result["failed_requeued"] = queue.requeue_failed(list(ids) if ids else None)
        if all_in_flight:
            queue.resume_unack_tasks()
        if expired:
            queue.counts()  # settles expired leases, as a get would
    with _sqlite_ro(t.location) as conn:
        after = _sqlite_stats(conn, q, False)["counts"]["in_flight"]
    result["in_flight_returned"] = max(0, before - after)
    if as_json:
        _emit_json(result)
    else:
        click.echo(
            f"{q.table}: {result['failed_requeued']} failed item(s) and "
            f"{result['in_flight_returned']} in-flight item(s) made ready again"
        )


_REQUEUE_HELP = """Make dead letters and stranded in-flight items of an ack queue ready again.

Without options both --failed and --expired apply. --expired gives back items
whose lease expired or whose consumer process is gone (never those of a live
consumer); --all-in-flight gives back every in-flight item (asks first).
Failed items start again with fresh attempts.
"""


def _requeue_options(f: F) -> F:
    f = _json_option(f)
    f = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")(f)
    f = click.option("--id", "ids", type=int, multiple=True, help="Only this failed item (repeatable).")(f)
    f = click.option("--all-in-flight", is_flag=True, help="Every in-flight item, even a live consumer's.")(f)
    f = click.option("--expired", is_flag=True, help="In-flight items whose lease expired or consumer died.")(
        f
    )
    f = click.option("--failed", is_flag=True, help="Failed items (dead letters).")(f)
    return _target_args(f)


@cli.command("requeue", help=_REQUEUE_HELP)
@_requeue_options
def requeue_command(**kwargs: Any) -> None:
    _requeue(**kwargs)


@cli.command("redrive", help="Same as requeue. " + _REQUEUE_HELP)
@_requeue_options
def redrive_command(**kwargs: Any) -> None:
    _requeue(**kwargs)


@cli.command("purge")
@_target_args
@click.option("--in-flight", is_flag=True, help="Also delete items consumers hold (got, not acked/done).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@_json_option
def purge_command(
    target: str, db_file: str | None, table: str | None, in_flight: bool, yes: bool, as_json: bool
) -> None:
    """Delete every item of a queue (asks first unless --yes).

    SQLite and MySQL: one transaction deletes waiting, delayed, failed and
    acked items, and with --in-flight also items consumers hold; items are
    never decoded. A file queue is opened (it must not be in use by another
    process) and drained.
    """
    t = _resolve(target, db_file)
    if t.engine == "legacy-file":
        raise _Failed(_legacy_message(target))
    if t.engine == "file":
        if table is not None:
            raise click.UsageError("--table does not apply to a file queue (one queue per directory)")
        n = _file_info(t)["queues"][0]["total"]
        if not yes:
            click.confirm(f"Delete all {n} item(s) of the file queue {target}?", abort=True)
        purged = _purge_file(t)
        result: dict[str, Any] = {"target": target, "purged": {os.path.basename(target): purged}}
    elif t.engine == "sqlite":
        with _sqlite_ro(t.location) as conn:
            tables = _pick(_sqlite_tables(conn), table, t.location)
            stats = [_sqlite_stats(conn, q, False) for q in tables]
        if not tables:
            raise _Failed(f"{t.location}: holds no queue")
        if not yes:
            what = ", ".join(f"{s['table']} ({s['total']})" for s in stats)
            click.confirm(f"Delete the items of {what} in {t.location}?", abort=True)
        result = {"target": t.location, "purged": _purge_sqlite(t, tables, in_flight)}
    else:
        with _mysql(t.location) as (conn, p):
            tables = _mysql_tables(conn, p.get("name"), table)
            if not tables:
                raise _Failed(f"{t.shown}: holds no queue")
            if not yes:
                click.confirm(f"Delete the items of {', '.join(q.table for q in tables)}?", abort=True)
            result = {"target": t.shown, "purged": _purge_mysql(conn, tables, in_flight)}
    if as_json:
        _emit_json(result)
    else:
        for name, n in result["purged"].items():
            click.echo(f"{name}: {n} item(s) deleted")


def _purge_sqlite(t: _Target, tables: list[_Table], in_flight: bool) -> dict[str, int]:
    out: dict[str, int] = {}
    with _sqlite_rw(t.location) as conn:
        conn.execute(f"PRAGMA busy_timeout={_BUSY_MS}")
        conn.execute("BEGIN IMMEDIATE")
        try:
            for q in tables:
                qt = _q(q.table)
                if q.ack and not in_flight:
                    n = conn.execute(f"DELETE FROM {qt} WHERE status <> 2").rowcount
                else:
                    n = conn.execute(f"DELETE FROM {qt}").rowcount
                pending = f"persistq_pending_{q.table}"
                if in_flight and _has_table(conn, pending):
                    n += conn.execute(f"DELETE FROM {_q(pending)}").rowcount
                out[q.table] = n
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return out


def _purge_mysql(conn: Any, tables: list[_Table], in_flight: bool) -> dict[str, int]:
    from .engines.mysql import _pending_table

    out: dict[str, int] = {}
    conn.begin()
    try:
        with conn.cursor() as cur:
            for q in tables:
                n = cur.execute(f"DELETE FROM `{q.table}`")
                if in_flight:
                    cur.execute(
                        "SELECT count(*) FROM information_schema.tables "
                        "WHERE table_schema = DATABASE() AND table_name = %s",
                        (_pending_table(q.table),),
                    )
                    if cur.fetchone()[0]:
                        n += cur.execute(f"DELETE FROM `{_pending_table(q.table)}`")
                out[q.table] = int(n)
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    return out


def _purge_file(t: _Target) -> int:
    from .errors import CorruptionError, Empty
    from .sync import Queue

    serializer = _Opaque(_file_state(t.location).serializer)
    n = 0
    with Queue[Any](t.location, serializer=serializer, autosave=True, durability="normal") as q:
        while True:
            try:
                n += len(q.get_many(1000, block=False))
            except Empty:
                return n
            except CorruptionError:
                if q.skip_corrupt() is None:
                    raise
                n += 1


@cli.command("verify")
@_target_args
@_json_option
def verify_command(target: str, db_file: str | None, table: str | None, as_json: bool) -> None:
    """Check a queue's storage; exit 1 if anything is damaged.

    SQLite: PRAGMA integrity_check. File queue: the metadata, every segment
    header and every record's checksum from the read position on (each damaged
    record is reported with its file and offset). MySQL: CHECK TABLE.
    """
    t = _resolve(target, db_file)
    problems: list[str] = []
    warnings: list[str] = []
    checked: list[str] = []
    if t.engine == "legacy-file":
        raise _Failed(_legacy_message(target))
    if t.engine == "sqlite":
        with _sqlite_ro(t.location) as conn:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
            checked = [q.table for q in _pick(_sqlite_tables(conn), table, t.location)]
        problems += [f"{t.location}: {r[0]}" for r in rows if r[0] != "ok"]
    elif t.engine == "file":
        from .engines.file import scan_segments

        segments, problems = scan_segments(t.location, _file_state(t.location))
        for s in segments:
            checked.append(os.path.basename(s.path))
            problems += [
                f"{s.path} offset {off}: corrupt record ({size} bytes; checksum or length does not match)"
                for off, size in s.corrupt
            ]
            if s.torn is not None:
                warnings.append(
                    f"{s.path} offset {s.torn}: an unfinished append at the end (a put that never "
                    "returned, or one in progress); the next open truncates it"
                )
    else:
        with _mysql(t.location) as (conn, p):
            tables = _mysql_tables(conn, p.get("name"), table)
            with conn.cursor() as cur:
                for q in tables:
                    cur.execute(f"CHECK TABLE `{q.table}`")
                    checked.append(q.table)
                    for row in cur.fetchall():
                        if row[2] in ("error", "warning") or (row[2] == "status" and row[3] != "OK"):
                            problems.append(f"{q.table}: {row[3]}")
    if as_json:
        _emit_json(
            {
                "target": t.shown,
                "ok": not problems,
                "checked": checked,
                "problems": problems,
                "warnings": warnings,
            }
        )
    else:
        for w in warnings:
            click.echo(f"warning: {w}", err=True)
        for problem in problems:
            click.echo(f"problem: {problem}", err=True)
        if not problems:
            click.echo(f"{t.shown}: ok ({len(checked)} checked: {', '.join(checked) or 'nothing'})")
    if problems:
        raise _Problems(f"{t.shown}: {len(problems)} problem(s) found")


def _vacuum(target: str, db_file: str | None, table: str | None, as_json: bool) -> None:
    t = _resolve(target, db_file)
    if t.engine == "legacy-file":
        raise _Failed(_legacy_message(target))
    if t.engine == "sqlite":
        files = _sqlite_files(t.location)
        before = _disk_bytes(files)
        with _sqlite_rw(t.location) as conn:
            conn.execute(f"PRAGMA busy_timeout={_BUSY_MS}")
            conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        after = _disk_bytes(files)
    elif t.engine == "file":
        from .sync import Queue

        path = t.location
        before = _disk_bytes([os.path.join(path, n) for n in os.listdir(path)])
        serializer = _Opaque(_file_state(path).serializer)
        # Opening removes consumed segments, stale temporary files and a torn tail.
        with Queue(path, serializer=serializer):
            pass
        after = _disk_bytes([os.path.join(path, n) for n in os.listdir(path)])
    else:
        from .sync import MySQLQueue

        with _mysql(t.location) as (conn, p):
            tables = _mysql_tables(conn, p.get("name"), table)
        before = after = 0
        for q in tables:
            with MySQLQueue(t.location, name=q.name, serializer=_Opaque(q.serializer or "pickle")) as mq:  # type: ignore[var-annotated]
                mq.shrink_disk_usage()
    result = {"target": t.shown, "bytes_before": before, "bytes_after": after}
    if as_json:
        _emit_json(result)
    elif t.engine == "mysql":
        click.echo(f"{t.shown}: OPTIMIZE TABLE done")
    else:
        click.echo(f"{t.shown}: {_size(before)} -> {_size(after)}")


_VACUUM_HELP = """Return free space to the file system.

SQLite: VACUUM and a WAL checkpoint (the whole database file; waits up to
10 s for other writers). File queue: opens and closes the queue, which deletes
consumed segments, stale temporary files and an unfinished append (it must not
be open in another process). MySQL: OPTIMIZE TABLE.
"""


@cli.command("vacuum", help=_VACUUM_HELP)
@_target_args
@_json_option
def vacuum_command(target: str, db_file: str | None, table: str | None, as_json: bool) -> None:
    _vacuum(target, db_file, table, as_json)


@cli.command("compact", help="Same as vacuum. " + _VACUUM_HELP)
@_target_args
@_json_option
def compact_command(target: str, db_file: str | None, table: str | None, as_json: bool) -> None:
    _vacuum(target, db_file, table, as_json)


# ----------------------------------------------------------------- migrate


class _Counting:
    """Forwards to a serializer and reports each record read from a queue file (not ``info``)."""

    def __init__(self, inner: Any, tick: Callable[[], None]) -> None:
        self.NAME = _serializers.serializer_name(inner)
        self._inner = inner
        self._tick = tick

    def dumps(self, value: Any, **kwargs: Any) -> bytes:
        """As the wrapped serializer."""
        data: bytes = self._inner.dumps(value, **kwargs)
        return data

    def loads(self, data: bytes) -> Any:
        """As the wrapped serializer."""
        return self._inner.loads(data)

    def dump(self, value: Any, fp: Any, **kwargs: Any) -> None:
        """As the wrapped serializer."""
        self._inner.dump(value, fp, **kwargs)

    def load(self, fp: Any) -> Any:
        """As the wrapped serializer; counts records of the queue's data files."""
        value = self._inner.load(fp)
        if os.path.basename(str(getattr(fp, "name", ""))) != "info":
            self._tick()
        return value


def _pq_size(src: str, serializer: Any) -> int:
    try:
        with open(os.path.join(src, "info"), "rb") as f:
            return int(serializer.load(f)["size"])
    except Exception:  # noqa: BLE001 - migrate_file_queue reports a bad info file
        return 0


class _NoBar:
    def update(self, n: int) -> None:
        """Nothing to show."""


@contextlib.contextmanager
def _progress(length: int, label: str, show: bool) -> Iterator[Any]:
    """A progress bar on a terminal's stderr for long runs; silent otherwise."""
    if show and length > 0 and sys.stderr.isatty():
        with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
            yield bar
    else:
        yield _NoBar()


def _migrate_file(src: str, dst: str, serializer_name: str, quiet: bool) -> int:
    from .migrate import migrate_file_queue

    serializer = getattr(_serializers, serializer_name)
    total = _pq_size(src, serializer)
    with _progress(total, "migrating", not quiet and total >= 1000) as bar:
        return migrate_file_queue(src, dst, _Counting(serializer, lambda: bar.update(1)))


def _migrate_sqlite(src: _Target, dst: str, quiet: bool) -> tuple[str, list[str]]:
    db_name = os.path.basename(src.location)
    if os.path.isdir(dst) and os.listdir(dst):
        raise _Failed(f"destination {dst!r} exists and is not an empty directory")
    if os.path.exists(dst) and not os.path.isdir(dst):
        raise _Failed(f"destination {dst!r} exists and is not a directory")
    os.makedirs(dst, mode=0o700, exist_ok=True)
    out = os.path.join(dst, db_name)
    os.close(os.open(out, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600))
    try:
        with _sqlite_ro(src.location) as source, _sqlite_rw(out) as copy:
            pages = source.execute("PRAGMA page_count").fetchone()[0]
            with _progress(pages, "copying", not quiet and pages >= 10_000) as bar:
                done = [0]

                def progress(status: int, remaining: int, total: int) -> None:
                    bar.update(total - remaining - done[0])
                    done[0] = total - remaining

                source.backup(copy, pages=1024, progress=progress)
            copy.execute("PRAGMA journal_mode=WAL")
            check = copy.execute("PRAGMA integrity_check").fetchall()
            if [r[0] for r in check] != ["ok"]:
                raise _Failed(f"the copy {out} fails its integrity check: {check[0][0]}")
            tables = [q.table for q in _sqlite_tables(copy)]
    except BaseException:
        for f in _sqlite_files(out):
            with contextlib.suppress(OSError):
                os.unlink(f)
        raise
    return out, tables


@cli.command("migrate")
@click.argument("src", metavar="SRC")
@click.argument("dst", metavar="DST")
@click.option(
    "--serializer",
    type=click.Choice(_SERIALIZERS),
    default="pickle",
    show_default=True,
    help="The serializer a persist-queue file queue SRC was written with.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def migrate_command(src: str, dst: str, serializer: str, quiet: bool) -> None:
    """Copy a persist-queue 1.x queue SRC into a new persistq queue DST; SRC is left unchanged.

    A file-queue directory (with 'info', 'q00000'…) is converted: its waiting
    items are copied in order, durably, into a persistq file queue DST (absent
    or empty). Items are decoded and encoded again with --serializer, so
    migrate only queues you trust when that is pickle.

    An SQLite database (a directory with data.db, or the file) needs no
    conversion: persistq opens persist-queue databases in place. migrate makes
    a consistent copy of it in the directory DST (safe while the source is in
    use), checks the copy's integrity and lists the queues it holds.
    """
    is_db = os.path.isfile(src) or (
        os.path.isdir(src)
        and any(n.endswith(".db") for n in os.listdir(src))
        and "info" not in os.listdir(src)
    )
    if not is_db:
        moved = _migrate_file(src, dst, serializer, quiet)
        click.echo(f"migrated {moved} item{'s' if moved != 1 else ''} from {src} to {dst}")
        return
    t = _resolve(src, None)
    out, tables = _migrate_sqlite(t, dst, quiet)
    click.echo(f"copied {t.location} to {out}: {len(tables)} queue table(s): {', '.join(tables) or 'none'}")
    click.echo(
        f"open it in place with persistq (path {dst!r}); the serializer must be the one it was written with"
    )


def main(argv: Sequence[str] | None = None, prog_name: str = "persistq") -> int:
    """Run the command line; return the exit code."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name=prog_name, standalone_mode=True)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        click.echo(exc.code, err=True)
        return 1
