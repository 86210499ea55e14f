"""Locations: which engine stores a queue, chosen by what the user passes as its first argument.

* a directory or an SQLite database file (``"jobs"``, ``Path("data/q.db")``,
  ``":memory:"``): the SQLite engine;
* ``mysql://user:password@host:port/database`` (also ``mariadb://``): the
  MySQL / MariaDB engine (the ``mysql`` extra);
* ``postgresql://user:password@host:port/database`` (also ``postgres://``):
  the PostgreSQL engine (the ``postgres`` extra).

A URL may carry ``?table=NAME`` (the queue's name, as ``name=``) and engine
options (MySQL: ``charset``, ``pool_size``, ``timeout``, ``driver``). A URL with
any other scheme raises ``ValueError``, and one whose engine's extra is not
installed raises :class:`~persistq.errors.MissingDependencyError`: a URL is
never taken for a directory name.

The factories (:func:`queue_store`, :func:`ack_store`, :func:`dict_store`) are
the only place that names engine classes; the queue kinds call them.
"""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import MissingDependencyError
from .base import AckStore, AckTableSpec, DictStore, Durability, QueueStore, TableSpec

__all__ = (
    "ENGINES",
    "Location",
    "ack_store",
    "dict_store",
    "file_identity",
    "parse_location",
    "queue_store",
    "schemes_of",
    "server_location",
)

EngineName = Literal["sqlite", "mysql", "postgresql"]


def file_identity(path: str) -> tuple[int, int] | None:
    """Device and inode of what ``path`` names now, or ``None`` if nothing.

    A path names a file, not an inode: engines that keep a file or directory
    open compare this with what they opened, to tell that it was deleted,
    replaced or moved since.
    """
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")

ENGINES: dict[str, tuple[EngineName, str, str]] = {
    # scheme: (engine, the driver module it needs, the extra that installs it)
    "mysql": ("mysql", "pymysql", "mysql"),
    "mariadb": ("mysql", "pymysql", "mysql"),
    "mysql+pymysql": ("mysql", "pymysql", "mysql"),
    "postgresql": ("postgresql", "psycopg", "postgres"),
    "postgres": ("postgresql", "psycopg", "postgres"),
}
"""The URL schemes understood, and what each needs installed."""


@dataclass(frozen=True)
class Location:
    """Where a queue is stored.

    Attributes:
        engine: ``"sqlite"``, ``"mysql"`` or ``"postgresql"``.
        path: the SQLite path (directory, database file or ``":memory:"``); for
            a server, the URL as given (it may hold the password: never shown).
        display: what attributes, ``repr`` and messages show (no password).
        name: the queue name the URL gives (``?table=``), if any.
        target: a server engine's resolved target (``params`` with
            ``safe_dsn``, ``name_given``, ``store_options()``), else ``None``.
    """

    engine: EngineName
    path: str = field(repr=False)
    display: str
    name: str | None = None
    target: Any = field(default=None, repr=False, compare=False)

    @property
    def is_server(self) -> bool:
        """Whether the queue lives on a database server (shared by machines)."""
        return self.engine != "sqlite"


def _require(scheme: str) -> EngineName:
    try:
        engine, module, extra = ENGINES[scheme]
    except KeyError:
        known = ", ".join(f"{s}://" for s in ENGINES)
        raise ValueError(
            f"unknown location scheme {scheme + '://'!r}: a queue location is a directory, an SQLite "
            f"database file, or a server URL ({known})"
        ) from None
    if importlib.util.find_spec(module) is None:
        raise MissingDependencyError(module, extra)
    return engine


def schemes_of(engine: EngineName) -> tuple[str, ...]:
    """The URL schemes that name ``engine`` (``("mysql", "mariadb", "mysql+pymysql")`` …)."""
    return tuple(scheme for scheme, (name, _, _) in ENGINES.items() if name == engine)


def parse_location(location: object) -> Location:
    """Turn a queue's first argument into a :class:`Location`.

    Raises:
        TypeError: not a ``str``, ``os.PathLike`` or ``Location``.
        ValueError: a URL of an unknown scheme, or a malformed server URL
            (the message never repeats the password).
        MissingDependencyError: the URL's engine is not installed.
    """
    if isinstance(location, Location):
        return location
    if isinstance(location, bytes) or not isinstance(location, (str, os.PathLike)):
        raise TypeError(f"a queue location is a path or a server URL, not {location!r}")
    text = os.fspath(location)
    match = _URL.match(text)
    if match is None:
        return Location("sqlite", text, text)
    engine = _require(match.group(1).lower())
    target = _engine_module(engine, "location").resolve_url(text)
    return Location(engine, text, target.params.safe_dsn, target.name_given, target)


def server_location(engine: EngineName, target: Any) -> Location:
    """A :class:`Location` for a target a server kind resolved itself (``MySQLQueue``'s keywords)."""
    display = target.params.safe_dsn
    return Location(engine, display, display, target.name_given, target)


_MODULES: dict[tuple[EngineName, str], tuple[str, str]] = {
    # (engine, what): (module in persistq.engines, class or resolver)
    ("sqlite", "queue"): ("sqlite", "SQLiteEngine"),
    ("sqlite", "ack"): ("sqlite_ack", "SQLiteAckEngine"),
    ("sqlite", "dict"): ("sqlite_dict", "SQLiteDictStore"),
    ("mysql", "location"): ("mysql_location", ""),
    ("mysql", "queue"): ("mysql", "MySQLEngine"),
    ("mysql", "ack"): ("mysql_ack", "MySQLAckEngine"),
    ("mysql", "dict"): ("mysql_dict", "MySQLDictStore"),
    ("postgresql", "location"): ("postgres_location", ""),
    ("postgresql", "queue"): ("postgres", "PostgresEngine"),
    ("postgresql", "ack"): ("postgres_ack", "PostgresAckEngine"),
    ("postgresql", "dict"): ("postgres_dict", "PostgresDictStore"),
}
"""Where each engine's pieces live: adding an engine is adding its rows (and its modules)."""


def _engine_module(engine: EngineName, what: str) -> Any:
    module, _ = _MODULES[(engine, what)]
    return importlib.import_module(f"{__package__}.{module}")


def _engine_class(engine: EngineName, what: str) -> Any:
    module, name = _MODULES[(engine, what)]
    return getattr(importlib.import_module(f"{__package__}.{module}"), name)


def _store(
    location: Location,
    what: str,
    first: tuple[str, Any],
    serializer_name: str,
    db_file_name: str | None,
    durability: Durability,
    timeout: float,
) -> Any:
    cls = _engine_class(location.engine, what)
    key, value = first  # the spec (queues) or the name (dicts)
    if location.engine == "sqlite":
        return cls(
            location.path,
            db_file_name=db_file_name,
            serializer_name=serializer_name,
            durability=durability,
            busy_timeout=timeout,
            **{key: value},
        )
    if db_file_name is not None:
        raise ValueError(f"db_file_name names an SQLite file; {location.display} is a server location")
    target = location.target
    return cls(target.params, value, serializer_name, **target.store_options())


def queue_store(
    location: Location,
    spec: TableSpec,
    serializer_name: str,
    *,
    db_file_name: str | None = None,
    durability: Durability = "full",
    timeout: float = 10.0,
) -> QueueStore:
    """The engine storing a plain queue kind's table at ``location``."""
    if location.is_server:
        # persist-queue's legacy tables exist only in SQLite files.
        spec = TableSpec(spec.table, spec.order, spec.unique)
    store = _store(location, "queue", ("spec", spec), serializer_name, db_file_name, durability, timeout)
    return store  # type: ignore[no-any-return]


def ack_store(
    location: Location,
    spec: AckTableSpec,
    serializer_name: str,
    *,
    db_file_name: str | None = None,
    durability: Durability = "full",
    timeout: float = 10.0,
) -> AckStore:
    """The engine storing an ack queue kind's table at ``location``."""
    store = _store(location, "ack", ("spec", spec), serializer_name, db_file_name, durability, timeout)
    return store  # type: ignore[no-any-return]


def dict_store(
    location: Location,
    name: str,
    serializer_name: str,
    *,
    db_file_name: str | None = None,
    durability: Durability = "full",
    timeout: float = 10.0,
) -> DictStore:
    """The engine storing the ``PDict`` named ``name`` (table ``dict_{name}``) at ``location``."""
    store = _store(location, "dict", ("name", name), serializer_name, db_file_name, durability, timeout)
    return store  # type: ignore[no-any-return]
