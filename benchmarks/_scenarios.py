"""What the benchmark scripts share: which queue a case drives, where it lives, how it is called.

``run_benchmark.py`` (one process, every kind beside its peers) and ``mysql_processes.py`` (server queues
with 1 and 4 processes) describe each measured queue as a :class:`QueueSpec` — library, class, face
(``sync``, ``asyncio``, ``trio``), durability, constructor keywords and engine — and call it through
:class:`SyncDriver` or :class:`AsyncDriver`, which use only the public API of each library. Their
scenario tables are lists of records naming specs; one runner per script times them.

Adding a server engine (PostgreSQL, say, configured by ``PERSISTQ_PG_DSN``) is one :class:`ServerEngine`
subclass added to :data:`SERVER_ENGINES`: how its configuration is read from the environment, the queue
classes and constructor keywords of persistq (and of persist-queue, if it has any) on it, and how to list,
read, count and drop a scenario's tables. Both scripts then add the engine's rows whenever it is
configured: ``run_benchmark.py`` its put/get/threads rows, ``mysql_processes.py`` its process rows.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TypeVar

import persistq
import persistq.sync as pqs

try:
    import persistqueue
except ImportError:  # the peer is optional: its rows are skipped
    persistqueue = None

try:
    import diskcache
except ImportError:
    diskcache = None

PERSISTQ = "persistq"
PQ = "persist-queue"
DC = "diskcache"
RAW = "sqlite3"  # the floor: stdlib sqlite3 doing persistq's storage work itself
FACES = ("sync", "asyncio", "trio")
LIBRARIES_PRESENT = {PERSISTQ: True, PQ: persistqueue is not None, DC: diskcache is not None, RAW: True}


def package_version(dist: str) -> str:
    """An installed distribution's version, or ``"not installed"``."""
    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def md_table(header: Sequence[str], rows: Iterable[Sequence[str]], right: Iterable[int] = ()) -> str:
    """A Markdown table; columns in ``right`` are right-aligned, ``|`` in cells is escaped."""
    align = set(right)
    out = ["| " + " | ".join(header) + " |"]
    out.append("|" + "|".join("---:" if i in align else "---" for i in range(len(header))) + "|")
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(out)


_T = TypeVar("_T")


def select(items: Iterable[_T], pattern: str, *names: Callable[[_T], str]) -> list[_T]:
    """The items any of whose ``names`` the regular expression ``pattern`` matches (all when empty)."""
    if not pattern:
        return list(items)
    rx = re.compile(pattern)
    return [it for it in items if any(rx.search(name(it)) for name in names)]


# ----------------------------------------------------------------------------- server engines


class ServerEngine:
    """A database server that queues can live on. Subclasses fill in the class attributes and methods."""

    name = ""  # QueueSpec.engine of its rows, and the prefix of their scenario ids
    title = ""  # for people: "MySQL"
    fifo_class = ""  # persistq's FIFO queue class on it (the same name in persistq and persistq.sync)
    ack_class = ""  # persistq's ack queue class on it
    peer_class: str | None = None  # persist-queue's class on it, if it has one
    peer_driver = ""  # how persist-queue talks to it (for the notes)
    env_help = ""  # what to set to configure it

    def config(self) -> dict[str, Any] | None:
        """The server's settings from the environment; ``None`` when it is not configured."""
        raise NotImplementedError

    def persistq_args(self, cfg: dict[str, Any], name: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Constructor arguments of persistq's queues on this server, tables named after ``name``.

        Positional and keyword: a kind opened by URL takes it first (``SQLiteQueue(url, name=…)``).
        """
        raise NotImplementedError

    def peer_args(self, cfg: dict[str, Any], name: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Constructor arguments of persist-queue's :attr:`peer_class`."""
        raise NotImplementedError

    def connect(self, cfg: dict[str, Any]) -> Any:
        """A DB-API connection for set-up, checks and clean-up (autocommit on)."""
        raise NotImplementedError

    def table_names(self, conn: Any, name: str) -> list[str]:
        """Every table of the scenario ``name``."""
        raise NotImplementedError

    def drop(self, cfg: dict[str, Any], name: str) -> None:
        """Drop the scenario's tables and any bookkeeping persistq keeps about them."""
        raise NotImplementedError

    def waiting_rows(self, cfg: dict[str, Any], name: str) -> int:
        """Rows still waiting or in flight in the scenario's tables."""
        raise NotImplementedError

    def stored_items(self, cfg: dict[str, Any], name: str) -> list[Any]:
        """Every payload in the scenario's FIFO table, unpickled, in order."""
        raise NotImplementedError

    def peer_prefill(self, cfg: dict[str, Any], name: str, items: Sequence[Any]) -> None:
        """Create persist-queue's table and write ``items`` into it in one transaction, in its format."""
        raise NotImplementedError

    def server_line(self, cfg: dict[str, Any]) -> str:
        """The server's version and the settings that matter for commit throughput, as one line."""
        raise NotImplementedError

    def server_pid(self) -> int | None:
        """The server's process id when it runs on this machine (its CPU time counts as the benchmark's)."""
        return None

    def db_error(self) -> type[BaseException]:
        """The base class of its driver's errors."""
        raise NotImplementedError

    def driver_name(self, spec: QueueSpec, q: Any) -> str:
        """The client driver queue ``q`` (of ``spec``) ended up using."""
        if spec.lib != PERSISTQ:
            return self.peer_driver
        engine = getattr(getattr(q, "_q", q), "_engine", None)
        return str(getattr(engine, "driver_in_use", None) or "?")


class MySQL(ServerEngine):
    """MySQL / MariaDB, from ``PERSISTQ_MYSQL_HOST/PORT/USER/PASSWORD/DATABASE`` (``scripts/mariadb.sh``)."""

    name = "mysql"
    title = "MySQL"
    fifo_class = "MySQLQueue"
    ack_class = "MySQLAckQueue"
    peer_class = "MySQLQueue"
    peer_driver = "PyMySQL via DBUtils PooledDB"
    env_help = "PERSISTQ_MYSQL_HOST, PERSISTQ_MYSQL_USER, PERSISTQ_MYSQL_DATABASE (and _PORT, _PASSWORD)"

    def config(self) -> dict[str, Any] | None:
        """The server from ``PERSISTQ_MYSQL_*``; ``None`` unless host, user and database are set."""
        env = {
            k: os.environ.get(f"PERSISTQ_MYSQL_{k}") for k in ("HOST", "PORT", "USER", "PASSWORD", "DATABASE")
        }
        if not env["HOST"] or not env["USER"] or not env["DATABASE"]:
            return None
        return {
            "host": env["HOST"],
            "port": int(env["PORT"] or 3306),
            "user": env["USER"],
            "password": env["PASSWORD"] or "",
            "database": env["DATABASE"],
        }

    def persistq_args(self, cfg: dict[str, Any], name: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """persistq's MySQL queues take the settings by their own names."""
        return (), {"name": name, **cfg}

    def peer_args(self, cfg: dict[str, Any], name: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """persist-queue's ``MySQLQueue`` spells them ``passwd`` and ``db_name``."""
        return (), {
            "host": cfg["host"],
            "port": cfg["port"],
            "user": cfg["user"],
            "passwd": cfg["password"],
            "db_name": cfg["database"],
            "name": name,
        }

    def connect(self, cfg: dict[str, Any]) -> Any:
        """A plain PyMySQL connection."""
        import pymysql

        return pymysql.connect(
            host=cfg["host"],
            port=cfg["port"],
            user=cfg["user"],
            password=cfg["password"],
            database=cfg["database"],
            autocommit=True,
        )

    def table_names(self, conn: Any, name: str) -> list[str]:
        """Every table whose name contains ``name``."""
        with conn.cursor() as cur:
            cur.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() "
                "AND table_name LIKE %s",
                (f"%{name}%",),
            )
            return [r[0] for r in cur.fetchall()]

    def drop(self, cfg: dict[str, Any], name: str) -> None:
        """Drop the tables and persistq's ``persistq_meta`` rows for them."""
        conn = self.connect(cfg)
        try:
            with conn.cursor() as cur:
                for t in self.table_names(conn, name):
                    cur.execute(f"DROP TABLE IF EXISTS `{t}`")
                cur.execute(
                    "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() "
                    "AND table_name = 'persistq_meta'"
                )
                if cur.fetchone()[0]:
                    cur.execute("DELETE FROM persistq_meta WHERE tbl LIKE %s", (f"%{name}%",))
        finally:
            conn.close()

    def waiting_rows(self, cfg: dict[str, Any], name: str) -> int:
        """Rows of FIFO tables, and rows of ack tables not acked (status 5) or dead (9)."""
        conn = self.connect(cfg)
        total = 0
        try:
            with conn.cursor() as cur:
                for t in self.table_names(conn, name):
                    if t.startswith("ack_queue_"):
                        cur.execute(f"SELECT COUNT(*) FROM `{t}` WHERE status NOT IN (5, 9)")
                    else:
                        cur.execute(f"SELECT COUNT(*) FROM `{t}`")
                    total += int(cur.fetchone()[0])
        finally:
            conn.close()
        return total

    def stored_items(self, cfg: dict[str, Any], name: str) -> list[Any]:
        """Both libraries store ``pickle.dumps(item)`` in ``queue_<name>``."""
        conn = self.connect(cfg)
        try:
            with conn.cursor() as cur:
                cur.execute(f"SELECT data FROM `queue_{name}` ORDER BY _id")
                out: list[Any] = []
                for (blob,) in cur.fetchall():
                    try:
                        out.append(pickle.loads(blob))
                    except Exception as exc:  # noqa: BLE001 - counted as a bad item, shown in the note
                        out.append(f"<undecodable: {exc!r}>")
                return out
        finally:
            conn.close()

    def peer_prefill(self, cfg: dict[str, Any], name: str, items: Sequence[Any]) -> None:
        """persist-queue has no ``put_many``: insert the rows its ``put`` writes (pickled item, time)."""
        import persistqueue.serializers.pickle as pq_pickle

        args, kwargs = self.peer_args(cfg, name)
        persistqueue.MySQLQueue(*args, **kwargs)  # creates its table
        conn = self.connect(cfg)
        try:
            now = time.time()
            rows = [(pq_pickle.dumps(x), now) for x in items]
            with conn.cursor() as cur:
                cur.execute("BEGIN")
                cur.executemany(f"INSERT INTO `queue_{name}` (data, timestamp) VALUES (%s, %s)", rows)
                cur.execute("COMMIT")
        finally:
            conn.close()

    def server_line(self, cfg: dict[str, Any]) -> str:
        """Version, ``innodb_flush_log_at_trx_commit``, ``log_bin`` and the default isolation."""
        import pymysql

        conn = self.connect(cfg)
        info: dict[str, str] = {}
        try:
            with conn.cursor() as cur:
                for key, sql in (
                    ("version", "SELECT VERSION()"),
                    ("innodb_flush_log_at_trx_commit", "SELECT @@innodb_flush_log_at_trx_commit"),
                    ("log_bin", "SELECT @@log_bin"),
                    ("isolation", "SELECT @@tx_isolation"),
                ):
                    try:
                        cur.execute(sql)
                        info[key] = str(cur.fetchone()[0])
                    except pymysql.MySQLError:
                        info[key] = "?"
        finally:
            conn.close()
        return (
            f"{info['version']} on {cfg['host']} (loopback), "
            f"innodb_flush_log_at_trx_commit={info['innodb_flush_log_at_trx_commit']}, "
            f"log_bin={info['log_bin']}, default isolation {info['isolation']}"
        )

    def db_error(self) -> type[BaseException]:
        """PyMySQL's ``MySQLError``."""
        import pymysql

        return pymysql.MySQLError  # type: ignore[no-any-return]

    def server_pid(self) -> int | None:
        """From ``PERSISTQ_MYSQL_PIDFILE`` (``scripts/mariadb.sh`` sets it)."""
        path = os.environ.get("PERSISTQ_MYSQL_PIDFILE")
        if not path:
            return None
        try:
            return int(Path(path).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None


class Postgres(ServerEngine):
    """PostgreSQL, from ``PERSISTQ_PG_DSN`` (``scripts/postgres.sh``); persist-queue has no such queue."""

    name = "postgresql"
    title = "PostgreSQL"
    fifo_class = "FIFOQueue"
    ack_class = "AckQueue"
    peer_class = None
    env_help = "PERSISTQ_PG_DSN"

    def config(self) -> dict[str, Any] | None:
        """The server's URL from ``PERSISTQ_PG_DSN``; ``None`` when it is not set."""
        url = os.environ.get("PERSISTQ_PG_DSN")
        return {"url": url} if url else None

    def persistq_args(self, cfg: dict[str, Any], name: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Every persistq kind opens a PostgreSQL location by URL."""
        return (cfg["url"],), {"name": name}

    def connect(self, cfg: dict[str, Any]) -> Any:
        """A psycopg connection in autocommit mode."""
        import psycopg

        return psycopg.connect(cfg["url"], autocommit=True)

    def table_names(self, conn: Any, name: str) -> list[str]:
        """Every table whose name contains ``name``."""
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE %s",
            (f"%{name}%",),
        ).fetchall()
        return [r[0] for r in rows]

    def drop(self, cfg: dict[str, Any], name: str) -> None:
        """Drop the tables and persistq's bookkeeping rows for them."""
        import psycopg

        with self.connect(cfg) as conn:
            for t in self.table_names(conn, name):
                conn.execute(f'DROP TABLE IF EXISTS "{t}"')
            for meta in ("persistq_meta", "persistq_changes"):
                with contextlib.suppress(psycopg.errors.UndefinedTable):
                    conn.execute(f"DELETE FROM {meta} WHERE tbl LIKE %s", (f"%{name}%",))

    def waiting_rows(self, cfg: dict[str, Any], name: str) -> int:
        """Rows of FIFO tables, and rows of ack tables not acked (status 5) or dead (9)."""
        total = 0
        with self.connect(cfg) as conn:
            for t in self.table_names(conn, name):
                where = " WHERE status NOT IN (5, 9)" if t.startswith("ack_queue_") else ""
                total += int(conn.execute(f'SELECT COUNT(*) FROM "{t}"{where}').fetchone()[0])
        return total

    def stored_items(self, cfg: dict[str, Any], name: str) -> list[Any]:
        """persistq stores ``pickle.dumps(item)`` in ``queue_<name>``."""
        out: list[Any] = []
        with self.connect(cfg) as conn:
            for (blob,) in conn.execute(f'SELECT data FROM "queue_{name}" ORDER BY _id').fetchall():
                try:
                    out.append(pickle.loads(blob))
                except Exception as exc:  # noqa: BLE001 - counted as a bad item, shown in the note
                    out.append(f"<undecodable: {exc!r}>")
        return out

    def server_line(self, cfg: dict[str, Any]) -> str:
        """Version, ``fsync``, ``synchronous_commit`` and the default isolation."""
        with self.connect(cfg) as conn:
            info = {
                key: str(conn.execute(f"SHOW {key}").fetchone()[0])
                for key in ("server_version", "fsync", "synchronous_commit", "default_transaction_isolation")
            }
        return (
            f"PostgreSQL {info['server_version']} (loopback), fsync={info['fsync']}, "
            f"synchronous_commit={info['synchronous_commit']}, default isolation "
            f"{info['default_transaction_isolation']}"
        )

    def db_error(self) -> type[BaseException]:
        """psycopg's ``Error``."""
        import psycopg

        return psycopg.Error  # type: ignore[no-any-return]

    def server_pid(self) -> int | None:
        """From ``PERSISTQ_PG_PIDFILE`` (``scripts/postgres.sh`` sets it)."""
        path = os.environ.get("PERSISTQ_PG_PIDFILE")
        if not path:
            return None
        try:
            return int(Path(path).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def driver_name(self, spec: QueueSpec, q: Any) -> str:
        """psycopg 3, blocking connections on storage threads (every backend)."""
        return "psycopg (threads)"


SERVER_ENGINES: dict[str, ServerEngine] = {e.name: e for e in (MySQL(), Postgres())}
"""Every server engine, by name; its rows run only when its :meth:`~ServerEngine.config` is set."""


def configured_engines() -> list[tuple[ServerEngine, dict[str, Any]]]:
    """The server engines configured in the environment, with their settings."""
    out = []
    for engine in SERVER_ENGINES.values():
        cfg = engine.config()
        if cfg is not None:
            out.append((engine, cfg))
    return out


def fresh_name() -> str:
    """A table name no other run uses (the ``bench_`` prefix keeps shared servers tidy)."""
    return "bench_" + uuid.uuid4().hex[:12]


# ----------------------------------------------------------------------------- queues


@dataclass(frozen=True)
class QueueSpec:
    """Which queue a case drives: hashable, picklable (it crosses to spawned processes), public API only."""

    lib: str  # PERSISTQ, PQ, DC or RAW
    cls: str  # the class in that library: SQLiteQueue, Queue, Deque, MySQLQueue, …
    face: str = "sync"  # sync, asyncio or trio (RAW: sync = inline, handoff = via a loop thread)
    durability: str | None = None  # persistq's durability=; None: the library's default, not passed
    kw: tuple[tuple[str, Any], ...] = ()  # other constructor keywords
    engine: str = ""  # "": a local directory; else a key of SERVER_ENGINES
    consume: str | None = None  # after get: "task_done", "ack" or "" (get alone); None: by the class

    @property
    def finish(self) -> str:
        """What takes a got item for good: ``ack`` for ack queues, ``task_done`` otherwise, unless set."""
        if self.consume is not None:
            return self.consume
        if self.lib == DC:
            return ""
        return "ack" if "Ack" in self.cls else "task_done"

    def kwargs(self) -> dict[str, Any]:
        """The constructor keywords, durability included when set."""
        kw = dict(self.kw)
        if self.durability is not None:
            kw["durability"] = self.durability
        return kw

    def label(self) -> str:
        """How the tables name this queue: ``persistq.sync.SQLiteQueue full``, ``persistq.Queue on trio``."""
        if self.lib == PERSISTQ:
            text = "persistq." + ("sync." if self.face == "sync" else "") + self.cls
            text += f" {self.durability}" if self.durability else ""
            return text + (f" on {self.face}" if self.face != "sync" else "")
        return f"{self.lib} {self.cls}"

    def server(self) -> tuple[ServerEngine, dict[str, Any]]:
        """The engine and its settings (it must be configured)."""
        engine = SERVER_ENGINES[self.engine]
        cfg = engine.config()
        if cfg is None:
            raise RuntimeError(f"{engine.title} is not configured: set {engine.env_help}")
        return engine, cfg

    def construct(self, where: Path | str) -> tuple[Any, str | None]:
        """A new queue object, and the table name to drop when it is closed.

        ``where`` is a directory for local engines. On a server a string is the table name (its owner
        drops it); a directory asks for a fresh name, dropped when the driver closes the queue.
        """
        if self.lib == PERSISTQ:
            cls = getattr(pqs if self.face == "sync" else persistq, self.cls)
        elif self.lib == PQ:
            cls = getattr(persistqueue, self.cls)
        else:
            cls = diskcache.Deque
        kw = self.kwargs()
        if self.engine:
            engine, cfg = self.server()
            name = where if isinstance(where, str) else fresh_name()
            args, kwargs = (engine.persistq_args if self.lib == PERSISTQ else engine.peer_args)(cfg, name)
            return cls(*args, **kwargs, **kw), (None if isinstance(where, str) else name)
        assert isinstance(where, Path)
        if self.lib == DC:
            return cls(directory=str(where / "q"), **kw), None
        if self.cls == "AsyncSQLiteQueue":  # persist-queue's: a database file, not a directory
            return cls(str(where / "q.db"), **kw), None
        return cls(str(where / "q"), **kw), None

    def empty_error(self) -> type[BaseException]:
        """What ``get`` raises when nothing comes."""
        if self.lib == PQ:
            return persistqueue.Empty
        return IndexError if self.lib == DC else persistq.Empty


POLL = {PERSISTQ: 0.5, PQ: 0.05}
"""Seconds a consumer's ``get`` waits before it checks whether it is done (persist-queue polls anyway)."""


class SyncDriver:
    """The blocking calls a benchmark makes on a queue of ``spec``.

    ``put``, ``get`` (take one item known to be there and consume it), ``try_get`` (consumer threads:
    take one or return ``False`` soon), ``get_nowait`` and ``finish`` (take without waiting; consume) are
    plain attributes picked once, so a timed loop pays one Python call per operation.
    """

    def __init__(self, spec: QueueSpec) -> None:
        self.spec = spec
        self.empty = spec.empty_error()
        self._fresh: dict[int, str] = {}
        self.put: Callable[[Any, Any], Any]
        self.get: Callable[[Any], Any]
        self.try_get: Callable[[Any], bool]
        self.finish: Callable[[Any, Any], Any]
        if spec.lib == DC:
            self.put, self.get, self.try_get = _dc_append, _dc_popleft, _dc_try_popleft
            self.finish = _nothing
            return
        self.put = _put
        self.finish = {"ack": _ack, "task_done": _task_done, "": _nothing}[spec.finish]
        self.get = {"ack": _get_ack, "task_done": _get_task_done, "": _get_plain}[spec.finish]
        self.try_get = _make_try_get(self.empty, self.finish, POLL[spec.lib])

    def open(self, where: Path | str) -> Any:
        """The queue, open (the sync classes open in their constructor); see :meth:`QueueSpec.construct`."""
        q, fresh = self.spec.construct(where)
        if fresh is not None:
            self._fresh[id(q)] = fresh
        return q

    def close(self, q: Any) -> None:
        """Close the queue (persist-queue's file and MySQL queues have no ``close``), drop a fresh table."""
        try:
            if self.spec.lib == DC:
                q.cache.close()
            elif hasattr(q, "close"):
                q.close()
        finally:
            fresh = self._fresh.pop(id(q), None)
            if fresh is not None:
                engine, cfg = self.spec.server()
                engine.drop(cfg, fresh)

    def get_nowait(self, q: Any) -> Any:
        """Take one item without waiting (raises :attr:`empty`); :attr:`finish` consumes it."""
        return q.get(block=False)

    def fill(self, q: Any, data: list[Any], chunk: int = 10_000) -> None:
        """Untimed fill: persistq's ``put_many`` in chunks, the others' put loop."""
        if self.spec.lib == PERSISTQ:
            for i in range(0, len(data), chunk):
                q.put_many(data[i : i + chunk])
        else:
            put = self.put
            for x in data:
                put(q, x)

    def put_many(self, q: Any, xs: list[Any]) -> Any:
        """One batch put (persistq only)."""
        return q.put_many(xs)

    def get_many(self, q: Any, k: int) -> list[Any]:
        """Up to ``k`` items in one call (persistq only)."""
        return q.get_many(k)  # type: ignore[no-any-return]


def _put(q: Any, x: Any) -> Any:
    return q.put(x)


def _nothing(q: Any, x: Any) -> None:
    pass


def _ack(q: Any, x: Any) -> Any:
    return q.ack(x)


def _task_done(q: Any, x: Any) -> Any:
    return q.task_done()


def _get_plain(q: Any) -> Any:
    return q.get()


def _get_ack(q: Any) -> Any:
    x = q.get()
    q.ack(x)
    return x


def _get_task_done(q: Any) -> Any:
    x = q.get()
    q.task_done()
    return x


def _make_try_get(
    empty: type[BaseException], finish: Callable[[Any, Any], Any], timeout: float
) -> Callable[[Any], bool]:
    def try_get(q: Any) -> bool:
        try:
            x = q.get(timeout=timeout)
        except empty:
            return False
        finish(q, x)
        return True

    return try_get


def _dc_append(q: Any, x: Any) -> None:
    q.append(x)


def _dc_popleft(q: Any) -> Any:
    return q.popleft()


def _dc_try_popleft(q: Any) -> bool:
    # diskcache's popleft never blocks: consumers poll.
    try:
        q.popleft()
    except IndexError:
        time.sleep(0.0005)
        return False
    return True


class AsyncDriver:
    """The awaited calls a benchmark makes on a queue of ``spec`` (asyncio or trio, as ``spec.face`` says)."""

    def __init__(self, spec: QueueSpec) -> None:
        self.spec = spec
        self.empty = spec.empty_error()
        self._finish = spec.finish
        self._timeout = POLL[spec.lib]

    @contextlib.asynccontextmanager
    async def open(self, where: Path | str) -> AsyncIterator[Any]:
        """The opened queue for an ``async with``; see :meth:`QueueSpec.construct`."""
        q, fresh = self.spec.construct(where)
        try:
            async with q:
                yield q
        finally:
            if fresh is not None:
                engine, cfg = self.spec.server()
                engine.drop(cfg, fresh)

    async def put(self, q: Any, x: Any) -> Any:
        """One put."""
        return await q.put(x)

    async def finish(self, q: Any, x: Any) -> None:
        """Consume a got item."""
        if self._finish == "ack":
            await q.ack(x)
        elif self._finish == "task_done":
            await q.task_done()

    # get and try_get consume inline, not through finish(): one coroutine less per timed operation.
    async def get(self, q: Any) -> Any:
        """Take one item known to be there and consume it."""
        x = await q.get()
        if self._finish == "ack":
            await q.ack(x)
        elif self._finish == "task_done":
            await q.task_done()
        return x

    async def try_get(self, q: Any) -> bool:
        """Consumer tasks: take one item and consume it, or return ``False`` soon."""
        try:
            x = await q.get(timeout=self._timeout)
        except self.empty:
            return False
        if self._finish == "ack":
            await q.ack(x)
        elif self._finish == "task_done":
            await q.task_done()
        return True

    async def get_nowait(self, q: Any) -> Any:
        """Take one item without waiting (raises :attr:`empty`); :meth:`finish` consumes it."""
        return await q.get(block=False)

    async def fill(self, q: Any, data: list[Any], chunk: int = 10_000) -> None:
        """Untimed fill: persistq's ``put_many`` in chunks, the others' put loop."""
        if self.spec.lib == PERSISTQ:
            for i in range(0, len(data), chunk):
                await q.put_many(data[i : i + chunk])
        else:
            for x in data:
                await q.put(x)

    async def put_many(self, q: Any, xs: list[Any]) -> Any:
        """One batch put (persistq only)."""
        return await q.put_many(xs)

    async def get_many(self, q: Any, k: int) -> list[Any]:
        """Up to ``k`` items in one call (persistq only)."""
        return await q.get_many(k)  # type: ignore[no-any-return]
