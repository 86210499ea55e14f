"""One ``LISTEN`` connection per process and database: wake-ups for every PostgreSQL queue on it.

Every write of a PostgreSQL engine that adds items, makes items ready again or
takes items commits ``pg_notify('persistq', <table>)`` in the same transaction
(see :mod:`.postgres`). PostgreSQL delivers a notification when, and only
when, the transaction that sent it commits, to every session listening on the
channel in that database, on any machine.

This module keeps, per process, one listening connection for each
``(host, port, database, user)`` that has watchers, run by a daemon thread
blocked in psycopg's ``Connection.notifies()``. A notification names a table;
the thread calls the callbacks watching that table. Callbacks run on the
listener thread: they must be cheap (set an event, schedule a wake-up) and
their exceptions are swallowed, so one bad callback cannot stop the others.

Lost notifications: while the connection is down (server restart, network),
notifications are not queued for it. After each (re)connection every
callback runs once, so waiters look again; the first connection does the
same for the watchers that subscribed before it was listening. A listener
whose last watcher unsubscribed closes its connection within
:data:`POLL_SECONDS`.

Health: if nothing arrived for :data:`PING_SECONDS` the thread sends
``SELECT 1``, so a server that vanished without closing the connection is
noticed (TCP keepalives cover a network that drops packets).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from typing import Any

from .. import _runtime as threading

__all__ = ("CHANNEL", "PING_SECONDS", "POLL_SECONDS", "Listener", "listener_count", "watch")

CHANNEL = "persistq"
"""The notification channel every persistq PostgreSQL table notifies on (the payload is the table)."""

POLL_SECONDS = 0.5
"""How long the thread waits for notifications before it checks whether it should stop."""

PING_SECONDS = 5.0
"""Seconds of silence after which the listener checks that its connection still works."""

_BACKOFF_FIRST = 0.05
_BACKOFF_MAX = 2.0

Key = tuple[str, int, str, str]


class Listener:
    """The listening connection of one database in this process, and its watchers.

    Args:
        key: ``(host, port, database, user)``.
        connect: opens a new autocommit psycopg connection (raises on failure).
        label: names the thread (never contains the password).
    """

    def __init__(self, key: Key, connect: Callable[[], Any], label: str) -> None:
        self.key = key
        self._connect = connect
        self._lock = threading.Lock()
        self._watchers: dict[str, list[Callable[[], None]]] = {}
        self._stopping = False
        self.connections = 0
        """How many times the listener connected (1 + reconnections)."""
        self.listening = threading.Event()
        """Set while ``LISTEN`` is active on a live connection."""
        self._thread = threading.Thread(target=self._run, name=f"persistq-pg-listen:{label}", daemon=True)

    def start(self) -> None:
        """Start the listener thread."""
        self._thread.start()

    @property
    def stopping(self) -> bool:
        """Whether the listener lost its last watcher and is closing."""
        return self._stopping

    def add(self, table: str, callback: Callable[[], None]) -> bool:
        """Register ``callback`` for ``table``; False if the listener is already stopping."""
        with self._lock:
            if self._stopping:
                return False
            self._watchers.setdefault(table, []).append(callback)
            return True

    def remove(self, table: str, callback: Callable[[], None]) -> None:
        """Unregister ``callback``; the last one out stops the listener."""
        with self._lock:
            callbacks = self._watchers.get(table)
            if callbacks is not None:
                with contextlib.suppress(ValueError):
                    callbacks.remove(callback)
                if not callbacks:
                    del self._watchers[table]
            if not self._watchers:
                self._stopping = True
        if self._stopping:
            _forget(self)

    def _callbacks(self, table: str | None) -> list[Callable[[], None]]:
        with self._lock:
            if table is None:
                return [cb for cbs in self._watchers.values() for cb in cbs]
            return list(self._watchers.get(table, ()))

    @staticmethod
    def _call(callbacks: list[Callable[[], None]]) -> None:
        for callback in callbacks:
            # A callback must never stop the listener (nor the other callbacks).
            with contextlib.suppress(BaseException):
                callback()

    def _run(self) -> None:
        backoff = _BACKOFF_FIRST
        while not self._stopping:
            try:
                conn = self._connect()
            except Exception:  # noqa: BLE001 - any failure to connect: try again later
                time.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
                continue
            try:
                conn.execute(f"LISTEN {CHANNEL}")
                self.connections += 1
                backoff = _BACKOFF_FIRST
                self.listening.set()
                # Whatever was committed before LISTEN took effect (at start,
                # or while the connection was down) was not heard: look again.
                self._call(self._callbacks(None))
                self._listen(conn)
            except Exception:  # noqa: BLE001 - the connection broke: reconnect
                time.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
            finally:
                self.listening.clear()
                with contextlib.suppress(Exception):
                    conn.close()

    def _listen(self, conn: Any) -> None:
        quiet_since = time.monotonic()
        while not self._stopping:
            got = False
            for notify in conn.notifies(timeout=POLL_SECONDS):
                got = True
                self._call(self._callbacks(notify.payload))
                if self.stopping:
                    return
            now = time.monotonic()
            if got:
                quiet_since = now
            elif now - quiet_since >= PING_SECONDS:
                conn.execute("SELECT 1")
                quiet_since = now


_listeners: dict[Key, Listener] = {}
_registry_lock = threading.Lock()


def _forget(listener: Listener) -> None:
    with _registry_lock:
        if _listeners.get(listener.key) is listener:
            del _listeners[listener.key]


def watch(
    key: Key, connect: Callable[[], Any], label: str, table: str, callback: Callable[[], None]
) -> Callable[[], None]:
    """Call ``callback`` whenever ``table`` is notified on the database ``key``; return an unsubscribe.

    The process's listener for ``key`` is started on the first watch (with
    ``connect``) and stopped when its last watcher unsubscribes. The
    unsubscribe function is idempotent.
    """
    while True:
        with _registry_lock:
            listener = _listeners.get(key)
            fresh = listener is None or listener.stopping
            if fresh:
                listener = Listener(key, connect, label)
                _listeners[key] = listener
        assert listener is not None
        if listener.add(table, callback):
            break
        # It stopped between the look-up and add(): make a new one.
    if fresh:
        listener.start()
    done = False

    def unsubscribe() -> None:
        nonlocal done
        if not done:
            done = True
            listener.remove(table, callback)

    return unsubscribe


def listener_for(key: Key) -> Listener | None:
    """The running listener of ``key`` in this process, if any (for tests and diagnostics)."""
    with _registry_lock:
        return _listeners.get(key)


def listener_count() -> int:
    """How many listening connections this process has."""
    with _registry_lock:
        return len(_listeners)


def _after_fork_in_child() -> None:
    # The parent's listener threads do not exist in the child; its watchers
    # (queue objects inherited through fork) refuse to run there anyway.
    global _registry_lock
    _listeners.clear()
    _registry_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
