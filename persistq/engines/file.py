"""The file engine: a directory of append-only segment files, bytes in, bytes out.

Layout of a queue directory::

    persistq.lock          lock file (flock / msvcrt): one open queue per directory
    persistq.meta          JSON, written once: format, version, chunksize, serializer
    persistq.pos           the consumer position: two checksummed slots, rewritten in place
    0000000000.seg …       segments: a 12-byte header, then framed records
    quarantine-S-O.bin     bytes of corrupt records that were skipped (if any)

A segment starts with ``b"PQSEG\\r\\n\\x1a"``, a little-endian ``u16`` format
version and a reserved ``u16``. Each record is ``<u32 length><u32 crc><payload>``
where ``crc = zlib.crc32(payload, zlib.crc32(length bytes))``. A segment holds
``chunksize`` records, then the writer moves on to the next one. The producer
position is found on open by scanning the last segment, so a put costs one
``write`` and (with ``durability="full"``) one ``fsync``, shared by every put
in the same batch (group commit).

The consumer position lives in ``persistq.pos``: two slots of
:data:`SLOT_SIZE` bytes (or a power-of-two multiple of it, see below), each::

    <8s b"PQPOS\\r\\n\\x1a"><u32 body length><u32 crc><body>
    body = <u64 sequence><u64 segment><u64 offset><u32 n>
           n times <u64 segment><u64 offset><u64 segment><u64 offset>

with ``crc = zlib.crc32(body, zlib.crc32(magic + length bytes))``. The body
says where the oldest record not done starts (:attr:`ReadPosition.oldest`)
and lists ``n`` sorted, disjoint half-open ranges of positions after it whose
records are done (:attr:`ReadPosition.done`): acknowledged, taken with
``commit=True``, or skipped as corrupt. After a restart every other record from
the oldest one on is delivered again, in order, and nothing else.

A new position goes into the slot that does not hold the newest valid one, in
place (``pwrite`` and, with ``durability="full"``, one ``fdatasync``: no
rename, no directory fsync), shared by every job of the batch. On open the
valid slot with the higher sequence number wins: a write torn by a crash fails
its CRC and leaves the previous position in force, which is right, since the
call that wrote it never returned. Slots sit on separate 4 KiB pages, so a torn
write of one cannot damage the other. Both slots damaged is a
:class:`~persistq.errors.CorruptionError`: the position is never guessed.

When the ranges do not fit in a slot (about 126 of them fit in 4 KiB: many held
records acknowledged out of order), the file is replaced by one whose slots are
twice as large (temp file, fsync, rename, directory fsync) — never truncated
or approximated, so the promise above holds at any size; opening the queue
shrinks the file again once its ranges fit in :data:`SLOT_SIZE`.

Segments are deleted once nothing in them can be delivered again — those
before the oldest record not done and those wholly inside a done range — and
only after the position saying so is durable (fsync'd first even with
``durability="normal"``, once per deletion), so a crash can never leave a
position that needs a deleted segment.

Older directories: ``persistq.meta`` version 1 held the consumer position
itself (``"tail"``). Opening one converts it: ``persistq.pos`` is written in
full and made durable first, then ``persistq.meta`` is replaced by version 2
without the tail. A crash between the two leaves version 1 in place, and the
next open converts it again from the same tail.

All state lives on the engine's worker thread (:mod:`._worker`); the queue
layer reads the few counters it needs (they are plain ints). The inspection
functions at the end (:func:`read_state`, :func:`scan_segments`,
:func:`is_locked`) read a directory without the lock and without changing it,
for tools such as ``persistq info``.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import os
import re
import struct
import sys
import tempfile
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from .._runtime import Lock  # a real lock even under gevent/eventlet
from ..errors import CorruptionError, QueueLocked, SerializerMismatch, StorageError
from ._worker import Job, Worker, checked_worker, run_job, stop_worker
from .locations import file_identity

__all__ = (
    "HEADER_SIZE",
    "META_FILE",
    "MIGRATE_HINT",
    "POSITION_FILE",
    "SLOT_SIZE",
    "Durability",
    "FileEngine",
    "Position",
    "QueueState",
    "ReadPosition",
    "Record",
    "SegmentReport",
    "Skipped",
    "LEGACY_INFO_FILE",
    "directory_kind",
    "is_locked",
    "is_segment_file",
    "legacy_queue_size",
    "read_state",
    "scan_segments",
    "validate_durability",
)

T = TypeVar("T")
Durability = Literal["full", "normal", "off"]
Position = tuple[int, int]
"""Where a record starts: ``(segment number, byte offset)``; ordered as the queue."""
Record = tuple[Position, bytes]
Range = tuple[Position, Position]

FORMAT_NAME = "persistq-file-queue"
META_VERSION = 2
"""Version of ``persistq.meta``; version 1 also held the consumer position."""
SEGMENT_VERSION = 1
META_FILE = "persistq.meta"
POSITION_FILE = "persistq.pos"
LOCK_FILE = "persistq.lock"
_TMP_PREFIX = ".persistq."
_SEG_MAGIC = b"PQSEG\r\n\x1a"
_SEG_HEADER = struct.Struct("<8sHH")
HEADER_SIZE = _SEG_HEADER.size
"""Bytes of a segment's header: its first record starts here."""
_FRAME = struct.Struct("<II")
_LEN = struct.Struct("<I")
_FRAME_SIZE = _FRAME.size
_SEG_NAME = re.compile(r"(\d{10})\.seg")
_PQ_CHUNK = re.compile(r"q\d{5}")
_READ_AHEAD = 4096

SLOT_SIZE = 4096
"""Bytes of one position slot in a new position file (a page: slots never share one)."""
_POS_MAGIC = b"PQPOS\r\n\x1a"
_SLOT_HEAD = struct.Struct("<8sII")
_SLOT_BODY = struct.Struct("<QQQI")
_RANGE = struct.Struct("<QQQQ")

MIGRATE_HINT = "python -m persistq migrate SRC DST"

# Directories locked by queue objects of this process: a second object gets a
# clear message even on platforms whose file locks are per process. Each entry
# records the directory's device and inode, so a directory deleted and created
# again at the same path is told apart from the one the holder locked.
_locked: dict[str, tuple[int, tuple[int, int] | None, FileEngine]] = {}
_locked_guard = Lock()


def validate_durability(durability: object) -> Durability:
    """Return ``durability`` if it is ``"full"``, ``"normal"`` or ``"off"``."""
    if durability not in ("full", "normal", "off"):
        raise ValueError(f"durability must be 'full', 'normal' or 'off', not {durability!r}")
    return durability


def _meta_crc(meta: dict[str, Any]) -> int:
    """CRC32 of the metadata's fields other than ``crc``, in a canonical form."""
    body = {k: v for k, v in meta.items() if k != "crc"}
    return zlib.crc32(json.dumps(body, sort_keys=True).encode("utf-8"))


def frame(payload: bytes) -> bytes:
    """One record as stored: length, CRC32, payload."""
    head = _LEN.pack(len(payload))
    return head + _LEN.pack(zlib.crc32(payload, zlib.crc32(head))) + payload


def _record_end(record: Record) -> Position:
    (seg, off), data = record
    return (seg, off + _FRAME_SIZE + len(data))


def _valid_at(buf: bytes | bytearray, p: int, end: int) -> int:
    """Return the end of a valid record starting at ``p`` in ``buf[:end]``, or -1."""
    if p + _FRAME_SIZE > end:
        return -1
    length, crc = _FRAME.unpack_from(buf, p)
    stop: int = p + _FRAME_SIZE + length
    if stop > end:
        return -1
    mv = memoryview(buf)
    if zlib.crc32(mv[p + _FRAME_SIZE : stop], zlib.crc32(mv[p : p + 4])) != crc:
        return -1
    return stop


def _resync(buf: bytes | bytearray, p: int, end: int) -> int:
    """The first offset after ``p`` where a valid record starts, or ``end``.

    A corrupt length field cannot make us skip good records: every offset is
    tried, and a random match of the CRC is a 1-in-2**32 event.
    """
    for q in range(p + 1, end - _FRAME_SIZE + 1):
        if _valid_at(buf, q, end) >= 0:
            return q
    return end


@dataclass(frozen=True)
class Skipped:
    """A corrupt region that was skipped.

    Attributes:
        segment: the segment file it was in.
        offset: its byte offset in that file.
        size: how many bytes were skipped.
        quarantine: the file holding a copy of those bytes.
    """

    segment: str
    offset: int
    size: int
    quarantine: str


@dataclass(frozen=True)
class ReadPosition:
    """The durable consumer position of a file queue.

    Attributes:
        oldest: where the oldest record not done starts (the end of the data
            when every record is done).
        done: sorted, disjoint half-open ranges ``(start, end)`` of positions
            after ``oldest``; the records starting inside them are done and
            are never delivered again. Every other record from ``oldest`` on
            is delivered, in order.
    """

    oldest: Position
    done: tuple[Range, ...] = ()

    def is_done(self, pos: Position) -> bool:
        """Whether the record starting at ``pos`` is done."""
        if pos < self.oldest:
            return True
        i = bisect.bisect_right(self.done, pos, key=lambda r: r[0]) - 1
        return i >= 0 and pos < self.done[i][1]

    def covers_segment(self, seg: int) -> bool:
        """Whether segment ``seg`` holds nothing to deliver, so it may be missing."""
        if seg < self.oldest[0]:
            return True
        i = bisect.bisect_right(self.done, (seg, HEADER_SIZE), key=lambda r: r[0]) - 1
        return i >= 0 and self.done[i][1][0] > seg

    def _touches(self, seg: int, size: int) -> bool:
        """Whether a done range overlaps the records of segment ``seg`` (``size`` bytes long)."""
        i = bisect.bisect_left(self.done, (seg, size), key=lambda r: r[0])
        return i > 0 and self.done[i - 1][1] > (seg, HEADER_SIZE)


def _encode_slot(seq: int, position: ReadPosition) -> bytes:
    body = bytearray(_SLOT_BODY.pack(seq, *position.oldest, len(position.done)))
    for a, b in position.done:
        body += _RANGE.pack(*a, *b)
    head = _POS_MAGIC + _LEN.pack(len(body))
    return head + _LEN.pack(zlib.crc32(body, zlib.crc32(head))) + bytes(body)


def _decode_slot(buf: bytes) -> tuple[int, ReadPosition] | None:
    """The sequence number and position in a slot, or ``None`` if it is torn, damaged or empty."""
    if len(buf) < _SLOT_HEAD.size + _SLOT_BODY.size:
        return None
    magic, length, crc = _SLOT_HEAD.unpack_from(buf)
    stop = _SLOT_HEAD.size + length
    if magic != _POS_MAGIC or length < _SLOT_BODY.size or stop > len(buf):
        return None
    body = buf[_SLOT_HEAD.size : stop]
    if zlib.crc32(body, zlib.crc32(buf[:12])) != crc:
        return None
    seq, seg, off, n = _SLOT_BODY.unpack_from(body)
    if length != _SLOT_BODY.size + n * _RANGE.size or off < HEADER_SIZE:
        return None
    done = tuple(((s1, o1), (s2, o2)) for s1, o1, s2, o2 in _RANGE.iter_unpack(body[_SLOT_BODY.size :]))
    # A slot that passed its CRC was written by persistq; one that breaks
    # these rules anyway is not trusted (the other slot, or an error, instead).
    prev = (seg, off)
    for a, b in done:
        if not (prev <= a < b) or a <= (seg, off):
            return None
        prev = b
    return seq, ReadPosition((seg, off), done)


@dataclass(frozen=True)
class _PositionFile:
    position: ReadPosition
    seq: int
    newest: int
    """Index (0 or 1) of the slot holding ``position``."""
    slot_size: int


def _read_position_file(path: str) -> _PositionFile:
    pos_path = os.path.join(path, POSITION_FILE)
    with open(pos_path, "rb") as f:
        data = f.read()
    slot_size = len(data) // 2
    if len(data) % 2 or slot_size < SLOT_SIZE or slot_size % SLOT_SIZE:
        raise CorruptionError(
            f"{pos_path}: damaged position file ({len(data)} bytes, not two slots of a multiple "
            f"of {SLOT_SIZE} bytes); the read position cannot be known"
        )
    valid = []
    for i in (0, 1):
        slot = _decode_slot(data[i * slot_size : (i + 1) * slot_size])
        if slot is not None:
            valid.append((slot[0], i, slot[1]))
    if not valid:
        raise CorruptionError(
            f"{pos_path}: both position slots are damaged (offsets 0 and {slot_size}); "
            "the read position cannot be known"
        )
    seq, newest, position = max(valid, key=lambda v: (v[0], v[1]))
    return _PositionFile(position, seq, newest, slot_size)


@dataclass(frozen=True)
class _Meta:
    chunksize: int
    serializer: str
    version: int
    tail: Position | None
    """The consumer position of a version 1 directory (converted on open)."""


def _read_meta(path: str) -> _Meta:
    meta_path = os.path.join(path, META_FILE)
    try:
        with open(meta_path, "rb") as f:
            meta = json.loads(f.read())
        # A flipped bit could still be valid JSON and move the position:
        # the checksum makes any change an error instead of lost items.
        if meta.get("format") == FORMAT_NAME and meta.get("crc") != _meta_crc(meta):
            raise ValueError("checksum mismatch")
        if meta.get("format") != FORMAT_NAME:
            raise ValueError("not a persistq file queue")
        version = meta.get("version")
        if version not in (1, META_VERSION):
            raise ValueError(f"format version {version!r} is not supported")
        chunksize = meta["chunksize"]
        tail: Position | None = None
        fields = [chunksize]
        if version == 1:
            seg, off = meta["tail"]
            fields += [seg, off]
            tail = (seg, max(off, HEADER_SIZE))
        if not all(isinstance(v, int) and v >= 0 for v in fields) or chunksize < 1:
            raise ValueError("bad field values")
        serializer = meta["serializer"]
        if not isinstance(serializer, str):
            raise ValueError("bad field values")
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptionError(f"{meta_path}: unreadable queue metadata ({exc})") from exc
    return _Meta(chunksize, serializer, version, tail)


def _segment_numbers(names: Sequence[str]) -> list[int]:
    return sorted(int(m.group(1)) for n in names if (m := _SEG_NAME.fullmatch(n)))


@dataclass
class _Scan:
    starts: list[int]
    """Offsets of records (valid ones and corrupt regions, each counted as one)."""
    end: int
    """Where the last record or region ends: the append position."""
    torn: bool
    """Whether bytes after ``end`` are a torn write to be truncated."""


def _scan(buf: bytes, start: int) -> _Scan:
    starts: list[int] = []
    p = start
    n = len(buf)
    while p < n:
        stop = _valid_at(buf, p, n)
        if stop >= 0:
            starts.append(p)
            p = stop
            continue
        nxt = _resync(buf, p, n)
        if nxt == n:
            # Nothing valid follows. A frame cut short, or zeros (a power loss
            # can leave allocated but unwritten blocks), is an append that never
            # completed: truncate it. A complete frame with a wrong checksum is
            # damage to a record that was written: keep it and report it.
            header_cut = p + _FRAME_SIZE > n
            cut = header_cut or p + _FRAME_SIZE + _LEN.unpack_from(buf, p)[0] > n
            if cut or not any(buf[p:]):
                return _Scan(starts, p, True)
        starts.append(p)
        p = nxt
    return _Scan(starts, p, False)


def _pread(fd: int, n: int, offset: int) -> bytes:
    if hasattr(os, "pread"):
        return os.pread(fd, n, offset)
    os.lseek(fd, offset, os.SEEK_SET)  # pragma: no cover - Windows
    return os.read(fd, n)  # pragma: no cover - Windows


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    if not hasattr(os, "pwrite"):  # pragma: no cover - Windows
        os.lseek(fd, offset, os.SEEK_SET)
        _write_all(fd, data)
        return
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def _write_all(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


# The position file is overwritten in place, its size never changes: flushing
# its data is enough (no inode update to journal), where the platform can.
_fdatasync: Callable[[int], None] = getattr(os, "fdatasync", os.fsync)


def _lock_fd(fd: int) -> bool:
    """Try to lock ``fd`` exclusively without waiting; return whether it worked."""
    if sys.platform == "win32":  # pragma: no cover - Windows
        import msvcrt

        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _unlock_fd(fd: int) -> None:
    if sys.platform == "win32":  # pragma: no cover - Windows
        import msvcrt

        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        except OSError:
            pass
    # On POSIX closing the descriptor releases the flock.


class FileEngine:
    """Storage of one file queue directory.

    Args:
        path: the queue directory (created owner-only if missing).
        chunksize: records per segment for a new queue; an existing queue
            keeps the value stored in its metadata.
        serializer_name: recorded on creation; opening with another one
            raises :class:`~persistq.errors.SerializerMismatch`.
        durability: ``"full"``: appends and every new consumer position are
            fsync'd before they are reported done (one fsync-family call each
            per batch), new segments and the directory when created.
            ``"normal"``: no fsync per operation, only when a segment is
            finished or about to be deleted (survives a process crash; a power
            loss may lose the last moments). ``"off"``: never fsync.
        quarantine: skip corrupt records by themselves (copying them to a
            quarantine file) instead of raising
            :class:`~persistq.errors.CorruptionError`.
    """

    def __init__(
        self,
        path: str,
        chunksize: int,
        serializer_name: str,
        durability: Durability = "full",
        quarantine: bool = False,
    ) -> None:
        self.path = path
        self.chunksize = chunksize
        self.serializer_name = serializer_name
        self.durability = durability
        self.quarantine = quarantine
        self.waiting = 0
        """Records that a read would return now (plain int, read by the queue layer)."""
        self.opened = False
        self.stale = False
        """Set once the path names another directory (deleted, replaced or moved): calls refuse."""
        self._pid = os.getpid()
        self._worker: Worker | None = None
        self._lock_fd: int | None = None
        self._lock_key: str | None = None
        self._dir_fd: int | None = None
        # Producer side: the last segment.
        self._hseg = 0
        self._hoff = HEADER_SIZE
        self._hcount = 0
        self._hfd: int | None = None
        self._sizes: dict[int, int] = {}
        """Sizes of the segments before the last one that are still on disk."""
        # Consumer side.
        self._cursor: Position = (0, HEADER_SIZE)
        self._rseg = -1
        self._rfd: int | None = None
        self._held: dict[Position, Position] = {}
        """Records read and not acknowledged: start -> end."""
        self._redeliver: list[Record] = []
        self._ahead: deque[Range] = deque()
        """Done ranges after the cursor (found on open): the cursor jumps over them."""
        self._holes: set[int] = set()
        """Segments after the oldest record not done, deleted because a done range covers them."""
        self._reclaimed: dict[Position, int] = {}
        """Per done range (by start): the segment up to which it was already reclaimed."""
        # The position file.
        self._persisted = ReadPosition((0, HEADER_SIZE))
        self._pos_fd: int | None = None
        self._pos_seq = 0
        self._pos_slot = 0
        """The slot the next position goes into: never the one holding the newest."""
        self._slot_size = SLOT_SIZE
        # Batch bookkeeping (worker thread only).
        self._unsynced = False
        self._dir_dirty = False
        self._consumer_dirty = False

    # ----------------------------------------------------------------- plumbing

    @property
    def is_open(self) -> bool:
        """Whether the engine is open in this process."""
        return self.opened and self._pid == os.getpid()

    def _seg_path(self, seg: int) -> str:
        return os.path.join(self.path, f"{seg:010d}.seg")

    def _alive_worker(self) -> Worker:
        if self.stale:
            raise StorageError(
                f"{self.path}: the queue directory was deleted or replaced since this queue opened it; "
                "open the queue again to use the directory now at that path"
            )
        return checked_worker(self._worker, self._pid)

    async def _run(
        self,
        fn: Callable[..., T],
        *args: Any,
        kind: str = "write",
        undo: Callable[[T], Job[Any]] | None = None,
    ) -> T:
        return await run_job(self._alive_worker(), Job(fn, *args, kind=kind), undo)

    def _execute(self, batch: list[Job[Any]]) -> None:
        for job in batch:
            try:
                job.result = job.fn(*job.args)
            except OSError as exc:
                if isinstance(exc, StorageError):
                    job.error = exc
                else:
                    job.error = StorageError(f"{self.path}: {exc}")
                    job.error.__cause__ = exc
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                job.error = exc
        if not self.opened:
            return
        # One fsync for every append of the batch (group commit), and only then
        # the position: it never points at unsynced data. One write of the
        # position for every read and ack of the batch.
        try:
            self._sync_data()
        except OSError as exc:
            self._fail(batch, ("append",), exc)
        try:
            self._save_position()
        except OSError as exc:
            self._fail(batch, ("read", "ack", "unread", "skip"), exc)

    def _fail(self, batch: list[Job[Any]], kinds: tuple[str, ...], exc: OSError) -> None:
        error = StorageError(f"{self.path}: {exc}")
        error.__cause__ = exc
        for job in batch:
            if job.kind not in kinds or job.error is not None:
                continue
            # Undo what the caller will not see succeed, so nothing is lost.
            if job.kind == "read" and job.result:
                self._unread(job.result)
            elif job.kind == "ack" and job.result:
                self._held.update(job.result)
            job.result = None
            job.error = error

    def _sync_data(self) -> None:
        if self._unsynced and self._hfd is not None and self.durability == "full":
            os.fsync(self._hfd)
        self._unsynced = False
        if self._dir_dirty and self.durability != "off":
            self._fsync_dir()
        self._dir_dirty = False

    def _fsync_dir(self) -> None:
        if self._dir_fd is not None:
            os.fsync(self._dir_fd)

    # ----------------------------------------------------------------- position

    def _skip_ends(self, pos: Position) -> Position:
        """``pos``, or the start of the next segment if ``pos`` is the end of its own.

        It stops at a hole (a segment deleted as consumed): the done range that
        starts there must go on covering it, or the next open would find a
        segment missing that no range explains.
        """
        seg, off = pos
        while seg < self._hseg and seg in self._sizes and off >= self._sizes[seg]:
            seg, off = seg + 1, HEADER_SIZE
        return (seg, off)

    def _durable_state(self) -> ReadPosition:
        """The position to persist: the oldest record not done, and the done ranges after it."""
        self._normalize()
        cursor = self._cursor
        undone = sorted([*self._held.items(), *((r[0], _record_end(r)) for r in self._redeliver)])
        if not undone:
            return ReadPosition(cursor, tuple(self._ahead))
        done: list[Range] = []
        for i, (_, end) in enumerate(undone):
            nxt = undone[i + 1][0] if i + 1 < len(undone) else cursor
            start = self._skip_ends(end)
            if start < nxt:
                done.append((start, nxt))
        return ReadPosition(undone[0][0], (*done, *self._ahead))

    def _save_position(self) -> None:
        if not self._consumer_dirty:
            return
        position = self._durable_state()
        if position != self._persisted:
            self._write_position(position)
            old = self._persisted
            self._persisted = position
            self._delete_consumed(old.oldest[0], position)
        self._consumer_dirty = False

    def _write_position(self, position: ReadPosition) -> None:
        data = _encode_slot(self._pos_seq + 1, position)
        if len(data) > self._slot_size:
            size = self._slot_size
            while size < len(data):
                size *= 2
            self._replace_position(position, self._pos_seq + 1, size)
            return
        assert self._pos_fd is not None
        _pwrite_all(self._pos_fd, data, self._pos_slot * self._slot_size)
        if self.durability == "full":
            _fdatasync(self._pos_fd)
        # Only a write that completed moves on to the other slot: after a failed
        # one the newest valid position stays untouched, and is rewritten next.
        self._pos_seq += 1
        self._pos_slot ^= 1

    def _replace_position(self, position: ReadPosition, seq: int, slot_size: int) -> None:
        data = _encode_slot(seq, position).ljust(2 * slot_size, b"\0")
        # Closed first: Windows cannot rename over a file that is open.
        if self._pos_fd is not None:
            fd, self._pos_fd = self._pos_fd, None
            os.close(fd)
        try:
            self._replace_file(POSITION_FILE, data)
            self._pos_seq, self._pos_slot, self._slot_size = seq, 1, slot_size
        finally:
            # After a failed replace the old file (and its slots) stays in use.
            with contextlib.suppress(FileNotFoundError):
                self._pos_fd = os.open(
                    os.path.join(self.path, POSITION_FILE), os.O_RDWR | getattr(os, "O_BINARY", 0)
                )

    def _replace_file(self, name: str, data: bytes) -> None:
        # Files replaced whole (metadata, a new or resized position file) are
        # fsync'd before the rename even with durability="normal": a power loss
        # must not leave an empty file under the name.
        sync = self.durability != "off"
        fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=self.path)
        try:
            try:
                _write_all(fd, data)
                if sync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, os.path.join(self.path, name))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        if sync:
            self._fsync_dir()

    def _write_meta(self) -> None:
        meta: dict[str, Any] = {
            "format": FORMAT_NAME,
            "version": META_VERSION,
            "chunksize": self.chunksize,
            "serializer": self.serializer_name,
        }
        meta["crc"] = _meta_crc(meta)
        self._replace_file(META_FILE, json.dumps(meta, sort_keys=True).encode("utf-8") + b"\n")

    def _reclaimable(self, position: ReadPosition) -> list[int]:
        """Segments on disk that a done range of ``position`` covers whole (never the last one)."""
        out: list[int] = []
        marks: dict[Position, int] = {}
        for a, b in position.done:
            first = a[0] if a[1] <= HEADER_SIZE else a[0] + 1
            # A range keeps its start while it grows: look only at segments it
            # did not cover at the last save.
            first = max(first, self._reclaimed.get(a, first), position.oldest[0] + 1)
            stop = min(b[0], self._hseg)
            out.extend(seg for seg in range(first, stop) if seg in self._sizes)
            marks[a] = max(first, stop)
        self._reclaimed = marks
        return out

    def _delete_consumed(self, old_oldest: int, position: ReadPosition) -> None:
        passed = [s for s in range(old_oldest, position.oldest[0]) if s in self._sizes or s in self._holes]
        covered = self._reclaimable(position)
        self._holes.difference_update(range(old_oldest, position.oldest[0]))
        if not passed and not covered:
            return
        if self.durability == "normal" and self._pos_fd is not None:
            # The position that no longer needs these segments must reach the
            # disk before they leave it, or a power loss could bring back an
            # older position pointing into them.
            _fdatasync(self._pos_fd)
        self._holes.update(covered)
        for seg in (*passed, *covered):
            self._sizes.pop(seg, None)
            if seg == self._rseg and self._rfd is not None:
                fd, self._rfd, self._rseg = self._rfd, None, -1
                os.close(fd)
            # The position is durable: a segment left behind by a failed unlink
            # is only disk space, and the next open deletes it.
            with contextlib.suppress(OSError):
                os.unlink(self._seg_path(seg))

    # ------------------------------------------------------------ open / close

    def _open(self) -> None:
        if self.opened:
            return
        try:
            os.makedirs(self.path, mode=0o700, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create queue directory {self.path!r}: {exc}") from exc
        if not os.path.isdir(self.path):
            raise StorageError(f"queue path {self.path!r} exists and is not a directory")
        self._lock()
        try:
            self._load()
        except BaseException:
            self._close_files()
            raise
        self.opened = True

    def _lock(self) -> None:
        key = os.path.realpath(self.path)
        ident = file_identity(self.path)
        with _locked_guard:
            held = _locked.get(key)
            if held is not None and held[0] == os.getpid():
                if held[1] == ident:
                    raise QueueLocked(
                        f"the file queue {self.path!r} is already open in this process "
                        "(another Queue object); close it first or share that object"
                    )
                # The holder's directory was deleted or replaced: this is a new
                # queue, and the old object must not go on writing into files
                # nobody will read.
                held[2].stale = True
            fd = os.open(os.path.join(self.path, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o600)
            if not _lock_fd(fd):
                os.close(fd)
                raise QueueLocked(
                    f"the file queue {self.path!r} is locked by another process; a file queue "
                    "is used by one process at a time (pass lock_timeout= to wait for it)"
                )
            _locked[key] = (os.getpid(), ident, self)
        self._lock_fd = fd
        self._lock_key = key

    def _load_position(self, names: list[str], segs: list[int]) -> _PositionFile:
        """Read (creating or converting, where needed) the metadata and the position file."""
        if META_FILE not in names and ("info" in names or any(_PQ_CHUNK.fullmatch(n) for n in names)):
            raise StorageError(
                f"{self.path!r} is a persist-queue 1.x file queue, whose format persistq does not "
                f"read in place; convert it once with: {MIGRATE_HINT} (SRC={self.path!r})"
            )
        start = ReadPosition((0, HEADER_SIZE))
        if META_FILE not in names:
            if segs:
                raise CorruptionError(f"{self.path!r} has segment files but no {META_FILE}")
            # A new queue. The position file comes first, so that a metadata
            # file is never found without one.
            self._replace_position(start, 1, SLOT_SIZE)
            self._write_meta()
        else:
            meta = _read_meta(self.path)
            if meta.serializer != self.serializer_name:
                raise SerializerMismatch(f"file queue {self.path!r}", meta.serializer, self.serializer_name)
            self.chunksize = meta.chunksize
            if meta.tail is not None:
                # Version 1 kept the position in the metadata. Write it to the
                # position file (durably) before the metadata stops holding
                # it; a crash in between repeats this from the same tail.
                self._replace_position(ReadPosition(meta.tail), 1, SLOT_SIZE)
                self._write_meta()
            elif POSITION_FILE not in names:
                if segs:
                    raise CorruptionError(f"{self.path!r} has segment files but no {POSITION_FILE}")
                self._replace_position(start, 1, SLOT_SIZE)
        pf = _read_position_file(self.path)
        if self._pos_fd is None:
            self._pos_fd = os.open(
                os.path.join(self.path, POSITION_FILE), os.O_RDWR | getattr(os, "O_BINARY", 0)
            )
        self._pos_seq, self._pos_slot, self._slot_size = pf.seq, 1 - pf.newest, pf.slot_size
        return pf

    def _load(self) -> None:
        names = os.listdir(self.path)
        if sys.platform != "win32":
            self._dir_fd = os.open(self.path, os.O_RDONLY)
        for name in names:
            if name.startswith(_TMP_PREFIX):
                os.unlink(os.path.join(self.path, name))
        segs = _segment_numbers(names)
        pf = self._load_position(names, segs)
        position = pf.position
        self._persisted = position
        tseg, toff = position.oldest
        doomed = [s for s in segs if position.covers_segment(s) and (s < tseg or s < segs[-1])]
        if doomed:
            # Consumed: a crash came before their deletion. The position saying
            # so reaches the disk first (it may have been written without fsync).
            if self.durability != "off":
                _fdatasync(self._pos_fd)  # type: ignore[arg-type]
            for seg in doomed:
                os.unlink(self._seg_path(seg))
        live = [s for s in segs if s not in doomed]
        gaps = self._gaps(live)
        # A segment may be missing only where a done range covers it whole.
        if live and (live[0] != tseg or not all(position.covers_segment(s) for s in gaps)):
            raise CorruptionError(f"{self.path!r}: segment files are missing (found {live})")
        self._holes = set(gaps)
        self._ahead = deque(position.done)
        if not live:
            if toff != HEADER_SIZE or position.done:
                raise CorruptionError(f"{self._seg_path(tseg)} is missing")
            self._hseg, self._hoff, self._hcount = tseg, HEADER_SIZE, 0
            self._cursor = position.oldest
            self.waiting = 0
            self._shrink_position_file(pf)
            return
        waiting = 0
        for seg in live[:-1]:
            self._check_header(seg, last=False)
            size = os.path.getsize(self._seg_path(seg))
            self._sizes[seg] = size
            if seg == tseg or position._touches(seg, size):
                start = toff if seg == tseg else HEADER_SIZE
                scan = _scan(self._slurp(seg), start)
                waiting += sum(1 for s in scan.starts if not position.is_done((seg, s)))
            else:
                waiting += self.chunksize
        last = live[-1]
        self._check_header(last, last=True)
        buf = self._slurp(last)
        scan = _scan(buf, HEADER_SIZE)
        self._hfd = os.open(self._seg_path(last), os.O_WRONLY | getattr(os, "O_BINARY", 0))
        if scan.torn:
            os.ftruncate(self._hfd, scan.end)
            if self.durability != "off":
                os.fsync(self._hfd)
        os.lseek(self._hfd, scan.end, os.SEEK_SET)
        end = (last, scan.end)
        if position.oldest > end or any(b > end for _, b in position.done):
            raise CorruptionError(
                f"{POSITION_FILE} in {self.path!r} points past the end of {self._seg_path(last)}"
            )
        waiting += sum(1 for s in scan.starts if not position.is_done((last, s)))
        self._hseg, self._hoff, self._hcount = last, scan.end, len(scan.starts)
        self._cursor = position.oldest
        self.waiting = waiting
        self._shrink_position_file(pf)

    @staticmethod
    def _gaps(live: list[int]) -> list[int]:
        if not live:
            return []
        present = set(live)
        return [s for s in range(live[0], live[-1]) if s not in present]

    def _shrink_position_file(self, pf: _PositionFile) -> None:
        if pf.slot_size > SLOT_SIZE and len(_encode_slot(pf.seq + 1, pf.position)) <= SLOT_SIZE:
            self._replace_position(pf.position, pf.seq + 1, SLOT_SIZE)

    def _check_header(self, seg: int, last: bool) -> None:
        path = self._seg_path(seg)
        with open(path, "rb") as f:
            header = f.read(HEADER_SIZE)
        if len(header) < HEADER_SIZE and last and _SEG_MAGIC.startswith(header[: len(_SEG_MAGIC)]):
            # A crash while the segment was being created: finish creating it.
            os.close(self._create_segment(seg))
            return
        if len(header) < HEADER_SIZE:
            raise CorruptionError(f"{path}: truncated segment header")
        magic, version, _ = _SEG_HEADER.unpack(header)
        if magic != _SEG_MAGIC:
            raise CorruptionError(f"{path}: not a persistq segment (bad magic at offset 0)")
        if version != SEGMENT_VERSION:
            raise CorruptionError(f"{path}: segment format version {version} is not supported")

    def _slurp(self, seg: int) -> bytes:
        with open(self._seg_path(seg), "rb") as f:
            return f.read()

    def _create_segment(self, seg: int) -> int:
        fd = os.open(
            self._seg_path(seg), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o600
        )
        try:
            _write_all(fd, _SEG_HEADER.pack(_SEG_MAGIC, SEGMENT_VERSION, 0))
            if self.durability == "full":
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        self._dir_dirty = True
        return fd

    def _close_files(self) -> None:
        for name in ("_hfd", "_rfd", "_pos_fd", "_dir_fd"):
            fd = getattr(self, name)
            if fd is not None:
                setattr(self, name, None)
                with contextlib.suppress(OSError):
                    os.close(fd)
        if self._lock_fd is not None:
            fd, self._lock_fd = self._lock_fd, None
            _unlock_fd(fd)
            os.close(fd)
            with _locked_guard:
                key = self._lock_key
                if key is not None and (held := _locked.get(key)) is not None and held[2] is self:
                    del _locked[key]
        self._rseg = -1

    def _on_exit(self) -> None:
        self.opened = False
        self._close_files()

    async def open(self) -> None:
        """Lock the directory, check the metadata, recover the last segment.

        Recovery truncates a torn append at the end of the last segment; a
        damaged record elsewhere is left for the reader to report.

        Raises:
            QueueLocked: another queue object or process holds the directory.
            StorageError: the path cannot be used, or holds a persist-queue queue.
            CorruptionError: the metadata or a segment header is damaged.
            SerializerMismatch: the queue was created with another serializer.
        """
        if self.opened:
            self._alive_worker()
            return
        if self._worker is None:
            self._worker = Worker(
                f"persistq-file:{os.path.basename(self.path)}", self._execute, self._on_exit
            )
        await run_job(self._worker, Job(self._open, kind="bare"))

    async def close(self) -> None:
        """Finish queued jobs, close the files and release the lock."""
        worker = self._worker
        if worker is None or self._pid != os.getpid():
            return
        self._worker = None
        await stop_worker(worker)

    def close_nowait(self) -> None:
        """Stop the worker after its queued jobs without waiting (for ``__del__``)."""
        worker = self._worker
        if worker is not None and self._pid == os.getpid():
            self._worker = None
            worker.stop()

    # ------------------------------------------------------------------ append

    def _append(self, datas: Sequence[bytes], maxsize: int) -> tuple[Position, Position] | None:
        if maxsize > 0 and self.waiting + len(datas) > maxsize:
            return None
        start_seg, start_off, start_count = self._hseg, self._hoff, self._hcount
        start_had_file = self._hfd is not None
        buf = bytearray()
        try:
            for data in datas:
                if self._hfd is None or self._hcount >= self.chunksize:
                    if buf:
                        _write_all(self._hfd, buf)  # type: ignore[arg-type]
                        buf.clear()
                    self._rollover()
                buf += frame(data)
                self._hcount += 1
            if buf:
                assert self._hfd is not None
                _write_all(self._hfd, buf)
        except BaseException:
            # Never leave a partial record: the next append would follow garbage.
            self._truncate_back(start_seg, start_off, start_count, start_had_file)
            raise
        self._hoff = os.lseek(self._hfd, 0, os.SEEK_CUR)  # type: ignore[arg-type]
        self._unsynced = True
        self.waiting += len(datas)
        return ((start_seg, start_off), (self._hseg, self._hoff))

    def _rollover(self) -> None:
        if self._hfd is not None:
            if self.durability != "off":
                os.fsync(self._hfd)
            self._sizes[self._hseg] = os.lseek(self._hfd, 0, os.SEEK_END)
            os.close(self._hfd)
            self._hfd = None
            self._hseg += 1
        self._hfd = self._create_segment(self._hseg)
        os.lseek(self._hfd, 0, os.SEEK_END)
        self._hoff = HEADER_SIZE
        self._hcount = 0

    def _truncate_back(self, seg: int, off: int, count: int, had_file: bool) -> None:
        try:
            if self._hfd is not None:
                os.close(self._hfd)
                self._hfd = None
            for s in range(seg + 1, self._hseg + 1):
                self._sizes.pop(s, None)
                os.unlink(self._seg_path(s))
            self._sizes.pop(seg, None)
            self._hseg, self._hoff, self._hcount = seg, off, count
            if had_file:
                self._hfd = os.open(self._seg_path(seg), os.O_WRONLY | getattr(os, "O_BINARY", 0))
                os.ftruncate(self._hfd, off)
                os.lseek(self._hfd, off, os.SEEK_SET)
            elif os.path.exists(self._seg_path(seg)):
                os.unlink(self._seg_path(seg))
        except OSError:  # pragma: no cover - a second failure: reopen repairs it
            self.opened = False

    def _unappend(self, span: tuple[Position, Position] | None, n: int) -> None:
        # Take a cancelled put back if its records are still the last ones in
        # the last segment and nobody read them; otherwise the put stands.
        if span is None:
            return
        (sseg, soff), end = span
        if end != (self._hseg, self._hoff) or sseg != self._hseg or self._hfd is None:
            return
        if self._cursor > (sseg, soff) or any(p >= (sseg, soff) for p in self._held):
            return
        os.ftruncate(self._hfd, soff)
        os.lseek(self._hfd, soff, os.SEEK_SET)
        self._hoff = soff
        self._hcount -= n
        self.waiting -= n
        self._unsynced = True

    async def append(self, datas: Sequence[bytes], maxsize: int = 0) -> bool:
        """Append records at the tail; ``False`` if ``maxsize`` would be passed.

        All or none: a failed write is truncated away. With
        ``durability="full"`` the records are fsync'd when this returns (one
        fsync for every append in the batch). If the caller is cancelled, the
        records are removed again when nothing was appended or read after
        them, else they stay.
        """

        def undo(span: tuple[Position, Position] | None) -> Job[None]:
            return Job(self._unappend, span, len(datas), kind="append")

        span = await self._run(self._append, datas, maxsize, kind="append", undo=undo)
        return span is not None

    # -------------------------------------------------------------------- read

    def _reader(self, seg: int) -> int:
        if self._rseg != seg or self._rfd is None:
            if self._rfd is not None:
                os.close(self._rfd)
                self._rfd = None
            self._rfd = os.open(self._seg_path(seg), os.O_RDONLY | getattr(os, "O_BINARY", 0))
            self._rseg = seg
        return self._rfd

    def _limit(self, seg: int) -> int:
        # A segment deleted as consumed reads as empty: the cursor steps over it.
        return self._hoff if seg == self._hseg else self._sizes.get(seg, HEADER_SIZE)

    def _normalize(self) -> Position | None:
        """Move the cursor past done ranges and finished segments; ``None`` when nothing is left."""
        seg, off = self._cursor
        ahead = self._ahead
        while True:
            while ahead and ahead[0][1] <= (seg, off):
                ahead.popleft()
            if ahead and ahead[0][0] <= (seg, off):
                seg, off = ahead.popleft()[1]
                continue
            if seg < self._hseg and off >= self._limit(seg):
                seg, off = seg + 1, HEADER_SIZE
                continue
            break
        self._cursor = (seg, off)
        if seg == self._hseg and off >= self._hoff:
            return None
        return self._cursor

    def _next(self) -> Record | None:
        if self._redeliver:
            return self._redeliver.pop(0)
        while True:
            pos = self._normalize()
            if pos is None:
                self.waiting = 0
                return None
            seg, off = pos
            limit = self._limit(seg)
            fd = self._reader(seg)
            chunk = _pread(fd, min(_READ_AHEAD, limit - off), off)
            stop = _valid_at(chunk, 0, len(chunk))
            if stop < 0 and len(chunk) >= _FRAME_SIZE:
                length = _LEN.unpack_from(chunk, 0)[0]
                if off + _FRAME_SIZE + length <= limit and length + _FRAME_SIZE > len(chunk):
                    chunk = _pread(fd, _FRAME_SIZE + length, off)
                    stop = _valid_at(chunk, 0, len(chunk))
            if stop >= 0:
                self._cursor = (seg, off + stop)
                return (pos, bytes(chunk[_FRAME_SIZE:stop]))
            if not self.quarantine:
                error = CorruptionError(
                    f"corrupt record in {self._seg_path(seg)} at offset {off} (checksum or length "
                    "does not match); call skip_corrupt() to move it to a quarantine file and go on, "
                    "or open the queue with on_corruption='quarantine'"
                )
                raise error
            self._skip_region(seg, off, limit)

    def _skip_region(self, seg: int, off: int, limit: int) -> Skipped:
        fd = self._reader(seg)
        rest = _pread(fd, limit - off, off)
        end = off + _resync(rest, 0, len(rest))
        qpath = os.path.join(self.path, f"quarantine-{seg:010d}-{off:010d}.bin")
        qfd = os.open(qpath, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o600)
        try:
            _write_all(qfd, rest[: end - off])
            if self.durability != "off":
                os.fsync(qfd)
        finally:
            os.close(qfd)
        self._dir_dirty = True
        self._cursor = (seg, end)
        self._consumer_dirty = True
        self.waiting = max(0, self.waiting - 1)
        return Skipped(self._seg_path(seg), off, end - off, qpath)

    def _read(self, n: int, commit: bool) -> list[Record]:
        out: list[Record] = []
        while len(out) < n:
            try:
                rec = self._next()
            except CorruptionError:
                if out:
                    break  # hand out what came before it; the next read reports it
                raise
            if rec is None:
                break
            out.append(rec)
            if not commit:
                self._held[rec[0]] = _record_end(rec)
        if out:
            self._consumer_dirty = True
        self.waiting = max(0, self.waiting - len(out))
        # Step over a finished segment now, so it can be deleted with this batch.
        self._normalize()
        return out

    def _unread(self, records: Sequence[Record]) -> None:
        records = self._restore_deleted(records)
        for rec in records:
            self._held.pop(rec[0], None)
        self._redeliver = sorted([*self._redeliver, *records])
        self.waiting += len(records)
        self._consumer_dirty = True

    def _restore_deleted(self, records: Sequence[Record]) -> list[Record]:
        # A committed read (autosave) that is given back may come from a
        # segment already deleted; write such records into a fresh segment of
        # the same number, so the position can point at them again on disk.
        out: list[Record] = []
        oldest = self._persisted.oldest[0]
        gone = sorted({pos[0] for pos, _ in records if pos[0] < oldest or pos[0] in self._holes})
        for seg in gone:
            if self._rseg == seg and self._rfd is not None:
                os.close(self._rfd)
                self._rfd, self._rseg = None, -1
            fd = self._create_segment(seg)
            try:
                off = HEADER_SIZE
                for _pos, data in sorted(r for r in records if r[0][0] == seg):
                    framed = frame(data)
                    _write_all(fd, framed)
                    out.append(((seg, off), data))
                    off += len(framed)
                if self.durability != "off":
                    os.fsync(fd)
            finally:
                os.close(fd)
            self._sizes[seg] = off
            self._holes.discard(seg)
        out.extend(r for r in records if r[0][0] not in gone)
        return out

    async def read(self, n: int, commit: bool) -> list[Record]:
        """Take up to ``n`` records in queue order (``[]`` if none).

        ``commit=True``: the records are done now (durable on return with
        ``durability="full"``). ``commit=False``: they are held until
        :meth:`ack`; until then a restart gives them back. Cancel-safe: a
        cancelled caller's records are given back.

        Raises:
            CorruptionError: the next record is damaged (and ``quarantine``
                is off); nothing was taken.
        """

        def undo(records: list[Record]) -> Job[None]:
            return Job(self._unread, records, kind="unread")

        return await self._run(self._read, n, commit, kind="read", undo=undo)

    async def unread(self, records: Sequence[Record]) -> None:
        """Give records back; they are read again first, in queue order."""
        await self._run(self._unread, records, kind="unread")

    def _ack(self, positions: Sequence[Position]) -> list[tuple[Position, Position]]:
        taken = [(p, self._held.pop(p)) for p in positions if p in self._held]
        self._consumer_dirty = True
        return taken

    async def ack(self, positions: Sequence[Position]) -> None:
        """Acknowledge held records: they are done, and never delivered again.

        With ``durability="full"`` the new consumer position is fsync'd when
        this returns (one ``fdatasync`` shared by every read and ack of the
        batch). It records the records done after an older one that is still
        held, so a crash brings back exactly the records not acknowledged.
        """
        await self._run(self._ack, list(positions), kind="ack")

    def _skip(self) -> Skipped | None:
        pos = self._normalize()
        if pos is None:
            return None
        seg, off = pos
        limit = self._limit(seg)
        chunk = _pread(self._reader(seg), limit - off, off)
        if _valid_at(chunk, 0, len(chunk)) >= 0:
            return None
        return self._skip_region(seg, off, limit)

    async def skip_corrupt(self) -> Skipped | None:
        """Skip the damaged record at the read position, if there is one.

        Its bytes (up to the next valid record) are copied to a quarantine
        file in the queue directory and fsync'd before the position moves past
        them. Returns what was skipped, or ``None`` if the next record is fine.
        """
        return await self._run(self._skip, kind="skip")


# --------------------------------------------------------------- inspection


@dataclass(frozen=True)
class QueueState:
    """A file queue directory as its metadata and position file describe it.

    Attributes:
        path: the queue directory.
        chunksize: records per segment.
        serializer: the name of the serializer the queue was created with.
        position: the durable consumer position.
        version: the metadata's format version; ``1`` is the older layout
            (position inside ``persistq.meta``) that the next open converts.
    """

    path: str
    chunksize: int
    serializer: str
    position: ReadPosition
    version: int


def read_state(path: str | os.PathLike[str]) -> QueueState:
    """Read a queue directory's metadata and durable consumer position.

    Read-only and without the directory lock: nothing is created, converted
    or repaired, so it is safe while the queue is open in another process
    (the answer may then be out of date as soon as it is returned).

    Raises:
        StorageError: ``path`` is not a persistq file queue.
        CorruptionError: the metadata is damaged, both position slots are
            damaged, or a file that must be there is missing.
        OSError: ``path`` cannot be read (``FileNotFoundError`` if missing).
    """
    path = os.fspath(path)
    names = os.listdir(path)
    segs = _segment_numbers(names)
    if META_FILE not in names:
        if segs:
            raise CorruptionError(f"{path} has segment files but no {META_FILE}")
        raise StorageError(f"{path} is not a persistq file queue (no {META_FILE})")
    meta = _read_meta(path)
    if meta.tail is not None:
        position = ReadPosition(meta.tail)
    elif POSITION_FILE in names:
        position = _read_position_file(path).position
    elif segs:
        raise CorruptionError(f"{path} has segment files but no {POSITION_FILE}")
    else:
        position = ReadPosition((0, HEADER_SIZE))
    return QueueState(path, meta.chunksize, meta.serializer, position, meta.version)


@dataclass(frozen=True)
class SegmentReport:
    """One segment file as :func:`scan_segments` found it.

    Attributes:
        path: the segment file.
        records: ``(offset, payload)`` of each intact record still to be
            delivered, in queue order.
        corrupt: ``(offset, size)`` of each damaged region still to be
            delivered.
        torn: the offset of an unfinished append at the end of the last
            segment (the next open truncates it), or ``None``.
    """

    path: str
    records: list[tuple[int, bytes]]
    corrupt: list[tuple[int, int]]
    torn: int | None


def scan_segments(
    path: str | os.PathLike[str], state: QueueState | None = None
) -> tuple[list[SegmentReport], list[str]]:
    """Read the records a queue will still deliver, checking every checksum.

    Read-only and without the directory lock. Records that are done (before
    the consumer position, or in one of its done ranges) are left out.

    Args:
        path: the queue directory.
        state: its :func:`read_state` (read here if not given).

    Returns:
        The segments from the consumer position on that are on disk, and the
        problems in the directory's structure (segment files missing, a bad
        segment header or version, a position past the end of the data), one
        sentence each, naming the file.

    Raises:
        CorruptionError: as :func:`read_state`.
    """
    path = os.fspath(path)
    if state is None:
        state = read_state(path)
    position = state.position
    tseg, toff = position.oldest
    live = [s for s in _segment_numbers(os.listdir(path)) if s >= tseg]
    problems: list[str] = []
    present = set(live)
    if live and (
        live[0] != tseg
        or any(s not in present and not position.covers_segment(s) for s in range(tseg, live[-1]))
    ):
        problems.append(f"{path}: segment files are missing (found {live}, read position in {tseg})")
    out: list[SegmentReport] = []
    for i, seg in enumerate(live):
        seg_path = os.path.join(path, f"{seg:010d}.seg")
        with open(seg_path, "rb") as f:
            buf = f.read()
        last = i == len(live) - 1
        if len(buf) < HEADER_SIZE or _SEG_HEADER.unpack_from(buf)[0] != _SEG_MAGIC:
            if last and _SEG_MAGIC.startswith(buf[: len(_SEG_MAGIC)]) and len(buf) < HEADER_SIZE:
                out.append(SegmentReport(seg_path, [], [], 0))
                continue
            problems.append(f"{seg_path} offset 0: not a persistq segment (bad header)")
            continue
        if _SEG_HEADER.unpack_from(buf)[1] != SEGMENT_VERSION:
            problems.append(f"{seg_path}: segment format version is not supported")
            continue
        start = toff if seg == tseg else HEADER_SIZE
        if start > len(buf):
            problems.append(f"{seg_path}: the read position {start} is past the end of the file")
            continue
        scan = _scan(buf, start)
        records: list[tuple[int, bytes]] = []
        corrupt: list[tuple[int, int]] = []
        bounds = [*scan.starts, scan.end]
        for k, s in enumerate(scan.starts):
            if position.is_done((seg, s)):
                continue
            stop = _valid_at(buf, s, len(buf))
            if stop >= 0:
                records.append((s, buf[s + _FRAME_SIZE : stop]))
            else:
                corrupt.append((s, bounds[k + 1] - s))
        torn = scan.end if scan.torn else None
        if torn is not None and not last:
            corrupt.append((torn, len(buf) - torn))
            torn = None
        out.append(SegmentReport(seg_path, records, corrupt, torn))
    if not live and toff != HEADER_SIZE:
        problems.append(f"{path}: the segment holding the read position ({tseg}) is missing")
    return out, problems


def is_locked(path: str | os.PathLike[str]) -> bool | None:
    """Whether a queue object (in any process) holds the directory open.

    Tried with a lock attempt that is released at once; ``None`` where this
    cannot be told without disturbing the holder (Windows).
    """
    lock = os.path.join(os.fspath(path), LOCK_FILE)
    if sys.platform == "win32":  # pragma: no cover - Windows
        return None
    if not os.path.exists(lock):
        return False
    import fcntl

    fd = os.open(lock, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


# --------------------------------------------------------------- recognising directories


def is_segment_file(name: str) -> bool:
    """Whether ``name`` is the name of a segment file (``0000000000.seg`` …)."""
    return _SEG_NAME.fullmatch(name) is not None


LEGACY_INFO_FILE = "info"
"""persist-queue 1.x's metadata file in a file-queue directory (written with the user's serializer)."""


def directory_kind(names: Sequence[str]) -> Literal["file", "persist-queue-file"] | None:
    """What a directory holding the files ``names`` is, as far as file queues go.

    ``"file"``: a persistq file queue (its metadata or segment files);
    ``"persist-queue-file"``: a persist-queue 1.x file queue, which persistq
    does not open in place (see :data:`MIGRATE_HINT`); ``None``: neither.
    """
    if META_FILE in names or any(is_segment_file(n) for n in names):
        return "file"
    if LEGACY_INFO_FILE in names or any(_PQ_CHUNK.fullmatch(n) for n in names):
        return "persist-queue-file"
    return None


def legacy_queue_size(path: str | os.PathLike[str], serializer: Any) -> int:
    """Items a persist-queue 1.x file queue says it holds (``0`` if its metadata cannot be read)."""
    try:
        with open(os.path.join(os.fspath(path), LEGACY_INFO_FILE), "rb") as f:
            return int(serializer.load(f)["size"])
    except Exception:  # noqa: BLE001 - the migration itself reports a bad metadata file
        return 0
