"""aiomysql connections for the MySQL engine on asyncio, driven through greenlet.

Imported only when the ``mysql`` extra (aiomysql, greenlet) is installed.

The engine's SQL is written once, as plain blocking-style code against a
DB-API cursor (``cur.execute``/``fetchall``/``commit``). On trio, and whenever
aiomysql is not installed, that code runs on worker threads with PyMySQL. On
asyncio it runs here, on the event loop itself, with aiomysql's non-blocking
sockets: :func:`run_bridged` runs the code in a greenlet, and each time the
code touches the connection (:class:`AioConnection`, :class:`AioCursor`) the
greenlet hands the awaitable to the coroutine that started it, which awaits it
on the loop and sends the result back. This is the bridge SQLAlchemy's asyncio
support uses; it means one copy of every SQL operation, its transaction
handling and its retry rules, whichever driver carries the bytes.

Values are rendered into the statement here, not by aiomysql: aiomysql 0.3.2
escapes ``bytes`` with a PyMySQL function that PyMySQL >= 1.2.1 no longer
provides (aio-libs/aiomysql#1080). Bytes go as hexadecimal literals
(``X'…'``), which mean the same bytes whatever the server's ``sql_mode``;
every other value is escaped by the connection as aiomysql would.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import aiomysql
import greenlet
import pymysql

__all__ = ("AioConnection", "AioCursor", "await_", "connect", "run_bridged")

T = TypeVar("T")

# Lost connections aiomysql reports as bare socket or stream errors.
_SOCKET_ERRORS = (OSError, asyncio.IncompleteReadError, EOFError)
_CR_SERVER_LOST = 2013


class _QuietCursor(aiomysql.Cursor):  # type: ignore[misc]
    """aiomysql's buffered cursor, without its ``SHOW WARNINGS`` after statements that warn.

    aiomysql turns server notes (``CREATE TABLE IF NOT EXISTS`` on an existing
    table) into Python warnings, at the cost of a round trip each; PyMySQL
    stopped doing so in 1.0, and the engine expects neither.
    """

    async def _show_warnings(self, conn: Any) -> None:
        return None


class _Bridge(greenlet.greenlet):  # type: ignore[misc]
    """A greenlet running blocking-style SQL code for :func:`run_bridged`."""


def await_(awaitable: Awaitable[T]) -> T:
    """Wait for ``awaitable`` on the event loop, from code run by :func:`run_bridged`."""
    current = greenlet.getcurrent()
    if not isinstance(current, _Bridge):
        raise RuntimeError("aiomysql operations must run inside run_bridged()")
    return current.parent.switch(awaitable)  # type: ignore[no-any-return]


async def run_bridged(fn: Callable[..., T], *args: Any) -> T:
    """Run blocking-style ``fn(*args)`` on the loop, awaiting what it hands over via :func:`await_`."""
    child = _Bridge(fn)
    value = child.switch(*args)
    while not child.dead:
        try:
            result = await value
        except BaseException as exc:  # noqa: BLE001 - raised inside fn, where its handlers are
            value = child.throw(exc)
        else:
            value = child.switch(result)
    return value  # type: ignore[no-any-return]


def _lost(exc: BaseException) -> BaseException:
    error: BaseException = pymysql.err.OperationalError(
        _CR_SERVER_LOST, f"Lost connection to MySQL server ({exc!r})"
    )
    error.__cause__ = exc
    return error


async def _bounded(awaitable: Awaitable[T], seconds: float) -> T:
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await awaitable
    return await asyncio.wait_for(awaitable, seconds)  # pragma: no cover - Python 3.10


def _call(awaitable: Awaitable[T], timeout: float | None = None) -> T:
    # ``timeout`` costs a timer per call: only the connection handshake uses it.
    try:
        return await_(awaitable if timeout is None else _bounded(awaitable, timeout))
    except _SOCKET_ERRORS as exc:
        # asyncio's TimeoutError is an OSError since Python 3.11.
        raise _lost(exc) from exc
    except asyncio.TimeoutError as exc:  # pragma: no cover - Python 3.10
        raise _lost(exc) from exc


class AioCursor:
    """A blocking-style cursor over an aiomysql cursor (inside :func:`run_bridged`)."""

    def __init__(self, conn: AioConnection, raw: Any) -> None:
        self._conn = conn
        self._raw = raw

    def __enter__(self) -> AioCursor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Drop the cursor's rows (nothing goes over the network)."""
        self._raw._rows = None

    @property
    def lastrowid(self) -> Any:
        """The first ``AUTO_INCREMENT`` id of the last ``INSERT``."""
        return self._raw.lastrowid

    def execute(self, sql: str, args: Sequence[Any] | None = None) -> int:
        """Run one statement (``%s`` placeholders); return the affected or found row count."""
        conn = self._conn
        query = sql if args is None else sql % tuple(conn.literal(a) for a in args)
        return int(conn._bounded_call(self._raw.execute(query)))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """Run ``sql`` once per row of arguments; return the summed row count."""
        return sum(self.execute(sql, row) for row in rows)

    def fetchone(self) -> Any:
        """The next row of the last result, or ``None``."""
        return _call(self._raw.fetchone())

    def fetchall(self) -> Any:
        """The remaining rows of the last result."""
        return _call(self._raw.fetchall())


class AioConnection:
    """A blocking-style connection over an aiomysql connection (inside :func:`run_bridged`)."""

    def __init__(self, raw: Any, read_timeout: float | None = None) -> None:
        self._raw = raw
        self._cursor: Any = None
        self._read_timeout = read_timeout
        """Seconds to wait for a statement's answer (``None``: forever), as PyMySQL's attribute."""
        # The read timeout is a watchdog, not a timer per statement (which
        # cost ~15% of a put): while a statement waits, a check runs every
        # fraction of the timeout and closes the socket of one that waited
        # too long, which ends the wait with a lost connection.
        self._waiting_since: float | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._timed_out = False

    @property
    def open(self) -> bool:
        """Whether the socket is still open."""
        return not self._raw.closed

    def literal(self, value: Any) -> str:
        """``value`` as an SQL literal."""
        if isinstance(value, (bytes, bytearray, memoryview)):
            return "X'" + bytes(value).hex() + "'"
        return str(self._raw.escape(value))

    def cursor(self) -> AioCursor:
        """A cursor (aiomysql's buffered cursor, one per connection, reused)."""
        if self._cursor is None:
            self._cursor = _call(self._raw.cursor(_QuietCursor))
        return AioCursor(self, self._cursor)

    def commit(self) -> None:
        """``COMMIT``."""
        self._bounded_call(self._raw.commit())

    def rollback(self) -> None:
        """``ROLLBACK``."""
        self._bounded_call(self._raw.rollback())

    def _bounded_call(self, awaitable: Awaitable[T]) -> T:
        limit = self._read_timeout
        if limit is None:
            return _call(awaitable)
        self._waiting_since = time.monotonic()
        if self._watchdog is None:
            self._arm(limit)
        try:
            return _call(awaitable)
        except pymysql.err.OperationalError as exc:
            if self._timed_out:
                raise pymysql.err.OperationalError(
                    _CR_SERVER_LOST, f"Lost connection to MySQL server: no answer within {limit:g} s"
                ) from exc
            raise
        finally:
            self._waiting_since = None

    def _arm(self, limit: float) -> None:
        loop = asyncio.get_running_loop()
        self._watchdog = loop.call_later(min(1.0, limit / 4), self._check, limit)

    def _check(self, limit: float) -> None:
        self._watchdog = None
        since = self._waiting_since
        if since is None:
            return  # idle: the next statement arms the watchdog again
        if time.monotonic() - since > limit:
            self._timed_out = True
            self.close()  # the pending read ends with "lost connection"
            return
        self._arm(limit)

    def close(self) -> None:
        """Close the socket at once (the server rolls back an open transaction).

        Works after the connection's event loop has stopped too (a queue
        dropped without ``close()``): the socket is then closed directly.
        """
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        raw = self._raw
        writer = raw._writer
        try:
            raw.close()
        except RuntimeError:
            # The loop is closed, so the transport cannot schedule its own end.
            sock = getattr(writer.transport, "_sock", None) if writer is not None else None
            if sock is not None:
                sock.close()
            raw._writer = raw._reader = None

    _force_close = close

    async def aclose(self) -> None:
        """Say goodbye to the server (``COM_QUIT``), then close the socket."""
        try:
            await self._raw.ensure_closed()
        except (*_SOCKET_ERRORS, pymysql.err.MySQLError):
            pass
        finally:
            self._raw.close()


def connect(*, read_timeout: float | None = None, **kwargs: Any) -> AioConnection:
    """Open an aiomysql connection (inside :func:`run_bridged`) with aiomysql's keywords.

    ``connect_timeout`` bounds the handshake too (aiomysql bounds only the
    TCP connect, so a server that accepts and then hangs would hang here).
    """
    timeout = kwargs.get("connect_timeout")
    return AioConnection(_call(aiomysql.connect(**kwargs), timeout), read_timeout)
