"""Tests of persist-queue 1.1.0's own suite that fail on persistq on purpose.

``tests/test_persistqueue_suite.py`` runs that suite against persistq and
checks its failures against :data:`DEVIATIONS`: each entry maps a test id of the
copied suite to a one-line reason — the test pins a persist-queue defect that
persistq fixes (README, "Migrating from persist-queue"), or inspects a private
persist-queue internal. A listed test that passes fails the check, so the list
cannot go stale.
"""

from __future__ import annotations

import os

_SERIALIZERS = ("default", "json", "msgpack", "cbor2", "pickle")


def _each_serializer(test: str, reason: str) -> dict[str, str]:
    """The entries of a test persist-queue parametrizes over its five serializers."""
    return {f"{test}[serializer={s}]": reason for s in _SERIALIZERS}


def _in_classes(module: str, classes: tuple[str, ...], test: str, reason: str) -> dict[str, str]:
    """The entries of a test inherited by several unittest classes."""
    return {f"{module}::{cls}::{test}": reason for cls in classes}


_HANDLES = "inspects persist-queue's private chunk file handles headf/tailf"
_QFILE = (
    "damages a chunk file found with persist-queue's private _qfile() and expects the record to be "
    "dropped (Empty); persistq's segments differ and a damaged record raises CorruptionError"
)
_ACK_CLASSES = ("SQLite3AckQueueTest", "FILOSQLite3AckQueueTest", "SQLite3UniqueAckQueueTest")

DEVIATIONS: dict[str, str] = {
    # The file queue, sync and async.
    **_each_serializer(
        "test_queue.py::TestPersist::test_clear_tail_file",
        "opens a second Queue on a directory whose first Queue is still open; persistq locks the "
        "directory (QueueLocked)",
    ),
    **_each_serializer("test_queue.py::TestPersist::test_del", _HANDLES),
    "test_async_queue.py::TestAsyncQueue::test_context_manager": _HANDLES,
    "test_async_edge_cases.py::TestAsyncQueueEdgeCases::test_queue_close_with_items": _HANDLES,
    "test_async_edge_cases.py::TestAsyncQueueEdgeCases::test_queue_close_without_items": _HANDLES,
    "test_async_queue.py::TestAsyncQueue::test_file_operations_error_handling": _QFILE,
    "test_async_edge_cases.py::TestAsyncQueueEdgeCases::test_pickle_error_handling": _QFILE,
    "test_async_edge_cases.py::TestAsyncQueueEdgeCases::test_eof_error_handling": _QFILE,
    "test_async_edge_cases.py::TestAsyncQueueEdgeCases::test_permission_error_handling": (
        "mock.patches persist-queue's private aiofiles.os.replace; persistq uses no aiofiles"
    ),
    "test_async_edge_cases.py::TestAsyncQueueEdgeCases::test_tempdir_different_filesystem": (
        "expects ValueError for a tempdir on another file system; persistq ignores tempdir (its temp "
        "files live in the queue directory)"
    ),
    "test_async_edge_cases.py::TestAsyncQueueEdgeCases::test_serializer_without_dump_load": (
        "a serializer with neither dumps/loads nor dump/load raises TypeError (persist-queue: AttributeError)"
    ),
    "test_async_queue.py::TestAsyncQueue::test_async_serializer": (
        "a MagicMock serializer with coroutine dump/load: persistq serializes synchronously (it calls the "
        "mock's dumps, which returns no bytes) and writes no metadata through it (the test counts 2 dumps)"
    ),
    # The async SQLite queue.
    **{
        test: "inspects persist-queue's private aiosqlite connection _conn"
        for test in (
            "test_async_edge_cases.py::TestAsyncSQLiteQueueEdgeCases::test_queue_close_without_connection",
            "test_async_edge_cases.py::TestAsyncSQLiteQueueEdgeCases::test_queue_close_with_connection",
            "test_async_queue.py::TestAsyncSQLiteQueue::test_context_manager",
        )
    },
    "test_async_edge_cases.py::TestAsyncSQLiteQueueEdgeCases::test_update_nonexistent_item": (
        "update() of an id that is not stored raises ItemNotFound (persist-queue silently changed nothing)"
    ),
    # SQLite queues.
    **_in_classes(
        "test_sqlqueue.py",
        ("SQLite3QueueTest", "SQLite3QueueNoAutoCommitTest"),
        "test_task_done_with_restart",
        "with auto_commit=False, task_done() finishes one item (the oldest this thread got); "
        "persist-queue's finished every item got so far",
    ),
    # Ack queues.
    **_in_classes(
        "test_sqlackqueue.py",
        (*_ACK_CLASSES, "SQLite3QueueInMemory"),
        "test_ack_unknown_item",
        "ack/nack/ack_failed of an item never delivered raise ItemNotFound (persist-queue logged a "
        "warning and returned None)",
    ),
    **_in_classes(
        "test_sqlackqueue.py",
        _ACK_CLASSES,
        "test_resume_unack",
        "closing an ack queue gives the items it holds in flight back to ready; persist-queue left "
        "them unack until resume_unack_tasks() or an auto_resume open",
    ),
    # PDict.
    "test_pdict.py::PDictTest::test_unsupported": (
        "PDict is a real MutableMapping: keys(), values(), items() and iteration work (persist-queue "
        "raised NotImplementedError)"
    ),
}

if hasattr(os, "geteuid") and os.geteuid() == 0:
    # Only root may create /invalid; anyone else gets the StorageError the test expects.
    DEVIATIONS["test_async_edge_cases.py::TestAsyncSQLiteQueueEdgeCases::test_database_connection_error"] = (
        "a path that does not exist is a new queue directory, created with its parents: as root, "
        "'/invalid/path/database.db' is created instead of failing"
    )
