"""The file engine: a directory of append-only segment files, bytes in, bytes out.

Layout of a queue directory::

    persistq.lock          lock file (flock / msvcrt): one open queue per directory
    persistq.meta          JSON: format, version, chunksize, serializer, consumer position
    0000000000.seg …       segments: a 12-byte header, then framed records
    quarantine-S-O.bin     bytes of corrupt records that were skipped (if any)

A segment starts with ``b"PQSEG\\r\\n\\x1a"``, a little-endian ``u16`` format
version and a reserved ``u16``. Each record is ``<u32 length><u32 crc><payload>``
where ``crc = zlib.crc32(payload, zlib.crc32(length bytes))``. A segment holds
``chunksize`` records, then the writer moves on to the next one.

Only the consumer position (segment, byte offset) is stored in
``persistq.meta``; the producer position is found on open by scanning the last
segment, so a put costs one ``write`` and (with ``durability="full"``) one
``fsync``, shared by every put in the same batch (group commit). The metadata
file is replaced atomically: a temp file in the queue directory, fsync,
``os.replace``, fsync of the directory (where the platform can open one).

The persisted consumer position is always the lowest record not yet
acknowledged: records handed out and not acknowledged, or given back, hold it
where it is. Segments wholly before it are deleted.

All state lives on the engine's worker thread (:mod:`._worker`); the queue
layer reads the few counters it needs (they are plain ints).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import struct
import sys
import tempfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from ..errors import CorruptionError, QueueLocked, SerializerMismatch, StorageError
from ._threads import Lock  # a real lock even under gevent/eventlet
from ._worker import Job, Worker, checked_worker, run_job, stop_worker

__all__ = (
    "META_FILE",
    "MIGRATE_HINT",
    "Durability",
    "FileEngine",
    "Position",
    "Record",
    "Skipped",
    "validate_durability",
)

T = TypeVar("T")
Durability = Literal["full", "normal", "off"]
Position = tuple[int, int]
"""Where a record starts: ``(segment number, byte offset)``; ordered as the queue."""
Record = tuple[Position, bytes]

FORMAT_NAME = "persistq-file-queue"
FORMAT_VERSION = 1
META_FILE = "persistq.meta"
LOCK_FILE = "persistq.lock"
_META_TMP_PREFIX = ".persistq.meta."
_SEG_MAGIC = b"PQSEG\r\n\x1a"
_SEG_HEADER = struct.Struct("<8sHH")
HEADER_SIZE = _SEG_HEADER.size
_FRAME = struct.Struct("<II")
_LEN = struct.Struct("<I")
_FRAME_SIZE = _FRAME.size
_SEG_NAME = re.compile(r"(\d{10})\.seg")
_PQ_CHUNK = re.compile(r"q\d{5}")
_READ_AHEAD = 4096

MIGRATE_HINT = "python -m persistq migrate SRC DST"

# Directories locked by queue objects of this process: a second object gets a
# clear message even on platforms whose file locks are per process.
_locked: dict[str, int] = {}
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


def _write_all(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


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
        durability: ``"full"``: appends are fsync'd before they are reported
            done, the metadata file and directory on every position change and
            segment creation. ``"normal"``: no fsync per operation, only when a
            segment is finished (survives a process crash; a power loss may
            lose the last moments). ``"off"``: never fsync.
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
        # Consumer side.
        self._cursor: Position = (0, HEADER_SIZE)
        self._rseg = -1
        self._rfd: int | None = None
        self._outstanding: set[Position] = set()
        self._redeliver: list[Record] = []
        self._persisted: Position = (0, HEADER_SIZE)
        # Batch bookkeeping (worker thread only).
        self._unsynced = False
        self._dir_dirty = False

    # ----------------------------------------------------------------- plumbing

    @property
    def is_open(self) -> bool:
        """Whether the engine is open in this process."""
        return self.opened and self._pid == os.getpid()

    def _seg_path(self, seg: int) -> str:
        return os.path.join(self.path, f"{seg:010d}.seg")

    def _alive_worker(self) -> Worker:
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
        # the metadata: the consumer position never points at unsynced data.
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
            elif job.kind == "ack":
                self._outstanding.update(job.args[0])
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

    def _position(self) -> Position:
        pos = self._cursor
        if self._outstanding:
            pos = min(pos, min(self._outstanding))
        if self._redeliver:
            pos = min(pos, self._redeliver[0][0])
        return pos

    def _save_position(self) -> None:
        pos = self._position()
        if pos == self._persisted:
            return
        self._write_meta(pos)
        old = self._persisted[0]
        self._persisted = pos
        # Fully consumed segments go only after the metadata no longer needs them.
        for seg in range(old, pos[0]):
            self._sizes.pop(seg, None)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._seg_path(seg))

    def _write_meta(self, pos: Position) -> None:
        meta: dict[str, Any] = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "chunksize": self.chunksize,
            "serializer": self.serializer_name,
            "tail": [pos[0], pos[1]],
        }
        meta["crc"] = _meta_crc(meta)
        data = json.dumps(meta, sort_keys=True).encode("utf-8") + b"\n"
        fd, tmp = tempfile.mkstemp(prefix=_META_TMP_PREFIX, dir=self.path)
        try:
            try:
                _write_all(fd, data)
                if self.durability == "full":
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, os.path.join(self.path, META_FILE))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        if self.durability == "full":
            self._fsync_dir()

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
        with _locked_guard:
            if _locked.get(key) == os.getpid():
                raise QueueLocked(
                    f"the file queue {self.path!r} is already open in this process "
                    "(another Queue object); close it first or share that object"
                )
            fd = os.open(os.path.join(self.path, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o600)
            if not _lock_fd(fd):
                os.close(fd)
                raise QueueLocked(
                    f"the file queue {self.path!r} is locked by another process; a file queue "
                    "is used by one process at a time (pass lock_timeout= to wait for it)"
                )
            _locked[key] = os.getpid()
        self._lock_fd = fd
        self._lock_key = key

    def _load(self) -> None:
        names = os.listdir(self.path)
        meta_path = os.path.join(self.path, META_FILE)
        if META_FILE not in names and ("info" in names or any(_PQ_CHUNK.fullmatch(n) for n in names)):
            raise StorageError(
                f"{self.path!r} is a persist-queue 1.x file queue, whose format persistq does not "
                f"read in place; convert it once with: {MIGRATE_HINT} (SRC={self.path!r})"
            )
        if sys.platform != "win32":
            self._dir_fd = os.open(self.path, os.O_RDONLY)
        for name in names:
            if name.startswith(_META_TMP_PREFIX):
                os.unlink(os.path.join(self.path, name))
        segs = sorted(int(m.group(1)) for n in names if (m := _SEG_NAME.fullmatch(n)))
        if META_FILE in names:
            tail = self._read_meta(meta_path)
        elif segs:
            raise CorruptionError(f"{self.path!r} has segment files but no {META_FILE}")
        else:
            tail = (0, HEADER_SIZE)
            self._write_meta(tail)
        self._persisted = tail
        tseg, toff = tail
        for seg in segs:
            if seg < tseg:  # consumed; a crash came before their deletion
                os.unlink(self._seg_path(seg))
        segs = [s for s in segs if s >= tseg]
        if segs and segs != list(range(tseg, tseg + len(segs))):
            raise CorruptionError(f"{self.path!r}: segment files are missing (found {segs})")
        if not segs:
            if toff != HEADER_SIZE:
                raise CorruptionError(f"{self._seg_path(tseg)} is missing")
            self._hseg, self._hoff, self._hcount = tseg, HEADER_SIZE, 0
            self._cursor = tail
            self.waiting = 0
            return
        waiting = 0
        for seg in segs[:-1]:
            self._check_header(seg, last=False)
            self._sizes[seg] = os.path.getsize(self._seg_path(seg))
            if seg == tseg:
                scan = _scan(self._slurp(seg), toff)
                waiting += len(scan.starts)
            else:
                waiting += self.chunksize
        last = segs[-1]
        self._check_header(last, last=True)
        buf = self._slurp(last)
        scan = _scan(buf, HEADER_SIZE)
        self._hfd = os.open(self._seg_path(last), os.O_WRONLY | getattr(os, "O_BINARY", 0))
        if scan.torn:
            os.ftruncate(self._hfd, scan.end)
            if self.durability != "off":
                os.fsync(self._hfd)
        os.lseek(self._hfd, scan.end, os.SEEK_SET)
        if last == tseg:
            if toff > scan.end:
                raise CorruptionError(
                    f"{META_FILE} in {self.path!r} points past the end of {self._seg_path(last)}"
                )
            waiting += sum(1 for s in scan.starts if s >= toff)
        else:
            waiting += len(scan.starts)
        self._hseg, self._hoff, self._hcount = last, scan.end, len(scan.starts)
        self._cursor = tail
        self.waiting = waiting

    def _read_meta(self, meta_path: str) -> Position:
        try:
            with open(meta_path, "rb") as f:
                meta = json.loads(f.read())
            # A flipped bit could still be valid JSON and move the position:
            # the checksum makes any change an error instead of lost items.
            if meta.get("format") == FORMAT_NAME and meta.get("crc") != _meta_crc(meta):
                raise ValueError("checksum mismatch")
            if meta.get("format") != FORMAT_NAME:
                raise ValueError("not a persistq file queue")
            if meta.get("version") != FORMAT_VERSION:
                raise ValueError(f"format version {meta.get('version')!r} is not supported")
            chunksize = meta["chunksize"]
            seg, off = meta["tail"]
            if not all(isinstance(v, int) and v >= 0 for v in (chunksize, seg, off)) or chunksize < 1:
                raise ValueError("bad field values")
            stored = meta["serializer"]
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptionError(f"{meta_path}: unreadable queue metadata ({exc})") from exc
        if stored != self.serializer_name:
            raise SerializerMismatch(f"file queue {self.path!r}", stored, self.serializer_name)
        self.chunksize = chunksize
        return (seg, max(off, HEADER_SIZE))

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
        if version != FORMAT_VERSION:
            raise CorruptionError(f"{path}: segment format version {version} is not supported")

    def _slurp(self, seg: int) -> bytes:
        with open(self._seg_path(seg), "rb") as f:
            return f.read()

    def _create_segment(self, seg: int) -> int:
        fd = os.open(
            self._seg_path(seg), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o600
        )
        try:
            _write_all(fd, _SEG_HEADER.pack(_SEG_MAGIC, FORMAT_VERSION, 0))
            if self.durability == "full":
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        self._dir_dirty = True
        return fd

    def _close_files(self) -> None:
        for name in ("_hfd", "_rfd", "_dir_fd"):
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
                if self._lock_key is not None and _locked.get(self._lock_key) == os.getpid():
                    del _locked[self._lock_key]
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
        if self._cursor > (sseg, soff) or any(p >= (sseg, soff) for p in self._outstanding):
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
        return self._hoff if seg == self._hseg else self._sizes[seg]

    def _normalize(self) -> Position | None:
        """Move the cursor past finished segments; ``None`` when nothing is left."""
        seg, off = self._cursor
        while seg < self._hseg and off >= self._limit(seg):
            seg, off = seg + 1, HEADER_SIZE
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
                self._outstanding.add(rec[0])
        self.waiting = max(0, self.waiting - len(out))
        # Step over a finished segment now, so it can be deleted with this batch.
        self._normalize()
        return out

    def _unread(self, records: Sequence[Record]) -> None:
        records = self._restore_deleted(records)
        for rec in records:
            self._outstanding.discard(rec[0])
        self._redeliver = sorted([*self._redeliver, *records])
        self.waiting += len(records)

    def _restore_deleted(self, records: Sequence[Record]) -> list[Record]:
        # A committed read (autosave) that is given back may come from a
        # segment already deleted; write such records into a fresh segment of
        # the same number, so the position can point at them again on disk.
        out: list[Record] = []
        gone = sorted({pos[0] for pos, _ in records if pos[0] < self._persisted[0]})
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
        out.extend(r for r in records if r[0][0] not in gone)
        return out

    async def read(self, n: int, commit: bool) -> list[Record]:
        """Take up to ``n`` records in queue order (``[]`` if none).

        ``commit=True``: the consumer position moves past them now (durable
        on return with ``durability="full"``). ``commit=False``: they are held
        until :meth:`ack`; until then a restart gives them back. Cancel-safe:
        a cancelled caller's records are given back.

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

    def _ack(self, positions: Sequence[Position]) -> None:
        self._outstanding.difference_update(positions)

    async def ack(self, positions: Sequence[Position]) -> None:
        """Acknowledge held records.

        The persisted position moves to the lowest record still held (or not
        yet read), durably with ``durability="full"``; records acknowledged
        behind a held one come back after a crash (at-least-once).
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
