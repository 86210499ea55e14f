"""The file queue's position file: one fsync per acknowledgement, torn and damaged slots, old directories.

``persistq.pos`` holds two CRC'd slots written in place, alternately; the
newest valid one wins on open. These tests tear and damage them byte by byte,
count the fsync-family calls per operation, convert a directory written by
the previous format (``tests/fixtures/file_queue_v1``, made by persistq's
earlier code), and read queues through the engine's inspection API and the
CLI built on it.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from click.testing import CliRunner
from conftest import drain, take_in_own_tasks

import persistq.engines.file as file_engine
from persistq import serializers
from persistq.cli import cli
from persistq.engines.file import (
    POSITION_FILE,
    SLOT_SIZE,
    FileEngine,
    ReadPosition,
    read_state,
    scan_segments,
)
from persistq.errors import CorruptionError, StorageError
from persistq.queues.file import Queue

pytestmark = pytest.mark.anyio

FIXTURE_V1 = Path(__file__).with_name("fixtures") / "file_queue_v1"
"""Written by the v1 code: json items a..e, chunksize 2; a and b done, c got and not done."""


def slot_seqs(path: Path) -> list[int]:
    """The sequence number in each slot of an intact position file (0: never written)."""
    data = (path / POSITION_FILE).read_bytes()
    size = len(data) // 2
    return [int.from_bytes(data[i * size + 16 : i * size + 24], "little") for i in (0, 1)]


def slot_used(data: bytes, slot: int) -> range:
    """The byte offsets a slot's header and body occupy in the position file."""
    size = len(data) // 2
    length = int.from_bytes(data[slot * size + 8 : slot * size + 12], "little")
    return range(slot * size, slot * size + 16 + length)


async def contents(path: Path, serializer: Any = serializers.pickle) -> list[Any] | CorruptionError:
    """What a reopened queue delivers (not marking anything done), or the CorruptionError it raises."""
    try:
        async with Queue(str(path), serializer=serializer) as q:
            return await drain(q)
    except CorruptionError as exc:
        return exc


async def held_out_of_order(path: Path, chunksize: int) -> None:
    """12 items; 0, 3 and 5 got and held, 1, 2 and 4 done behind them, 6.. never got."""
    async with Queue(str(path), chunksize=chunksize) as q:
        await q.put_many(range(12))
        await take_in_own_tasks(q, 6, done={1, 2, 4})


# ----------------------------------------------------------- fsyncs per call


@pytest.mark.parametrize("durability", ["full", "normal", "off"])
async def test_fsync_family_calls_per_get_and_task_done(
    qpath: str, durability: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """get+task_done: one fdatasync at full, none at normal/off, no rename; segments go after a sync."""
    events: list[str] = []

    def recorder(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            if name != "unlink" or str(args[0]).endswith(".seg"):
                events.append(name)
            return real(*args)

        return call

    async with Queue(qpath, chunksize=5, durability=durability) as q:
        await q.put_many(range(20))
        monkeypatch.setattr(os, "fsync", recorder("fsync", os.fsync))
        monkeypatch.setattr(os, "replace", recorder("replace", os.replace))
        monkeypatch.setattr(os, "unlink", recorder("unlink", os.unlink))
        monkeypatch.setattr(file_engine, "_fdatasync", recorder("sync", file_engine._fdatasync))
        monkeypatch.setattr(file_engine, "_pwrite_all", recorder("write", file_engine._pwrite_all))
        for i in range(20):
            assert await q.get() == i
            await q.task_done()
        monkeypatch.undo()
    assert events.count("write") == 20
    assert "fsync" not in events
    assert "replace" not in events
    assert events.count("unlink") == 3  # segments 0-2; the last one stays
    syncs = {"full": 20, "normal": 3, "off": 0}[durability]
    assert events.count("sync") == syncs
    if durability != "off":
        # A segment goes only once the position that no longer needs it is on disk.
        for i, event in enumerate(events):
            if event == "unlink":
                assert [e for e in events[:i] if e in ("write", "sync")][-1] == "sync"


async def test_concurrent_task_dones_share_one_position_write(
    qpath: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """task_done calls of many tasks at once are written (and fdatasync'd) together, not one by one."""
    writes: list[int] = []
    real = file_engine._pwrite_all

    def counting(fd: int, data: bytes, offset: int) -> None:
        writes.append(offset)
        real(fd, data, offset)

    async with Queue(qpath) as q:
        await q.put_many(range(40))
        for _ in range(40):
            await q.get()
        monkeypatch.setattr(file_engine, "_pwrite_all", counting)
        async with anyio.create_task_group() as tg:
            for _ in range(40):
                tg.start_soon(q.task_done)
        assert await q.empty()
    assert 1 <= len(writes) < 40
    assert set(writes) <= {0, SLOT_SIZE}


# ------------------------------------------------------- torn and bad slots


async def test_torn_position_write_at_every_byte_keeps_the_previous_position(tmp_path: Path) -> None:
    """A position write cut at any byte leaves the previous position in force; complete, the new one."""
    base, snapshot = tmp_path / "base", tmp_path / "snapshot"
    async with Queue(str(base), chunksize=100) as q:
        await q.put_many(range(12))
        await take_in_own_tasks(q, 6, done={1, 2, 4})
        before = (base / POSITION_FILE).read_bytes()
        shutil.copytree(base, snapshot)  # what a crash at this moment leaves
        await q.task_done()  # this task holds none: the oldest handed out, 0
        after = (base / POSITION_FILE).read_bytes()
    (slot,) = [
        i for i in (0, 1) if before[i * SLOT_SIZE : (i + 1) * SLOT_SIZE] != after[i * SLOT_SIZE :][:SLOT_SIZE]
    ]
    written = slot_used(after, slot)
    old, new = [0, 3, 5, *range(6, 12)], [3, 5, *range(6, 12)]
    outcomes = []
    for k in range(len(written) + 1):
        case = tmp_path / f"cut{k}"
        shutil.copytree(snapshot, case)
        cut = written.start + k
        (case / POSITION_FILE).write_bytes(after[:cut] + before[cut:])
        # Complete exactly when the bytes not yet written already held their new values.
        complete = after[cut : written.stop] == before[cut : written.stop]
        assert await contents(case) == (new if complete else old), f"cut after {k} bytes"
        outcomes.append(complete)
        shutil.rmtree(case)
    assert outcomes.count(False) > len(written) // 2


@pytest.mark.parametrize("chunksize", [100, 3])
async def test_a_flipped_byte_in_either_slot_never_gives_a_wrong_position(
    tmp_path: Path, chunksize: int
) -> None:
    """A byte flipped in the older slot changes nothing; in the newest: the previous position, or an error."""
    base = tmp_path / "base"
    async with Queue(str(base), chunksize=chunksize) as q:
        await q.put_many(range(12))
        await take_in_own_tasks(q, 6, done={1, 2, 4})
        await q.task_done()  # 0; with chunksize=3 segment 0 (items 0-2) is deleted
    data = (base / POSITION_FILE).read_bytes()
    seqs = slot_seqs(base)
    newest = seqs.index(max(seqs))
    current, previous = [3, 5, *range(6, 12)], [0, 3, 5, *range(6, 12)]
    for slot in (0, 1):
        for offset in [*slot_used(data, slot), slot * SLOT_SIZE + SLOT_SIZE - 1]:
            case = tmp_path / f"flip{offset}"
            shutil.copytree(base, case)
            flipped = bytearray(data)
            flipped[offset] ^= 0x20
            (case / POSITION_FILE).write_bytes(bytes(flipped))
            result = await contents(case)
            if slot != newest or offset not in slot_used(data, slot):
                assert result == current, f"offset {offset}: {result}"
            elif chunksize == 100:
                assert result == previous, f"offset {offset}: {result}"
            else:
                # The previous position needs segment 0, deleted once the newest was durable.
                assert isinstance(result, CorruptionError), f"offset {offset}: {result}"
                assert "missing" in str(result)
            shutil.rmtree(case)


async def test_both_slots_damaged_is_a_corruption_error(tmp_path: Path) -> None:
    """Both slots damaged, the file zeroed, truncated or missing: CorruptionError naming it, never a guess."""
    base = tmp_path / "base"
    await held_out_of_order(base, chunksize=100)
    data = (base / POSITION_FILE).read_bytes()
    both = bytearray(data)
    both[slot_used(data, 0).start + 20] ^= 1
    both[slot_used(data, 1).start + 20] ^= 1
    cases = {
        "both": bytes(both),
        "zeros": bytes(len(data)),
        "truncated": data[:100],
        "half": data[:SLOT_SIZE],
    }
    for name, content in [*cases.items(), ("missing", None)]:
        case = tmp_path / name
        shutil.copytree(base, case)
        if content is None:
            (case / POSITION_FILE).unlink()
        else:
            (case / POSITION_FILE).write_bytes(content)
        result = await contents(case)
        assert isinstance(result, CorruptionError), name
        assert POSITION_FILE in str(result), name
        with pytest.raises(CorruptionError):
            read_state(case)
        assert (case / POSITION_FILE).exists() == (content is not None), "nothing was repaired"


async def test_many_ranges_grow_the_position_file_and_reopen_shrinks_it(qpath: str) -> None:
    """Hundreds of done ranges never get dropped: the slots grow, and shrink once the ranges fit again."""
    path = Path(qpath)
    done = set(range(1, 600, 2))  # every other item: 300 ranges, over 9 KiB of slot
    async with Queue(qpath) as q:
        await q.put_many(range(600))
        await take_in_own_tasks(q, 600, done)
        size = (path / POSITION_FILE).stat().st_size
        assert size >= 4 * SLOT_SIZE
        assert size % (2 * SLOT_SIZE) == 0
    assert len(read_state(qpath).position.done) == 300
    async with Queue(qpath) as q:
        left = await drain(q)
        assert left == list(range(0, 600, 2))
        for _ in range(290):
            await q.task_done()  # the oldest 290: 10 ranges stay
    async with Queue(qpath) as q:
        assert (path / POSITION_FILE).stat().st_size == 2 * SLOT_SIZE
        assert await drain(q) == list(range(580, 600, 2))


async def test_position_past_the_data_is_a_corruption_error(qpath: str) -> None:
    """A done range ending past the last record (its data lost) is refused, not trusted."""
    async with Queue(qpath) as q:
        await q.put_many(range(6))
        await take_in_own_tasks(q, 4, done={1, 2})
    seg = Path(qpath) / "0000000000.seg"
    data = seg.read_bytes()
    seg.write_bytes(data[: file_engine.HEADER_SIZE + 2 * (len(data) - file_engine.HEADER_SIZE) // 6])
    result = await contents(Path(qpath))
    assert isinstance(result, CorruptionError)
    assert "points past the end" in str(result)


# ------------------------------------------------------------ old directories


def copy_fixture(tmp_path: Path) -> Path:
    path = tmp_path / "v1"
    shutil.copytree(FIXTURE_V1, path)
    return path


async def test_directory_of_the_previous_format_is_converted(tmp_path: Path) -> None:
    """A v1 directory opens with its items; the position moves to persistq.pos, the meta becomes v2."""
    path = copy_fixture(tmp_path)
    assert read_state(path).version == 1
    async with Queue(str(path), serializer=serializers.json) as q:
        assert await q.qsize() == 3
        assert await q.get() == "c"
        await q.task_done()
    meta = json.loads((path / "persistq.meta").read_text())
    assert meta["version"] == 2
    assert "tail" not in meta
    state = read_state(path)
    assert (state.version, state.serializer, state.chunksize) == (2, "json", 2)
    async with Queue(str(path), serializer=serializers.json) as q:
        assert await drain(q) == ["d", "e"]


async def test_conversion_interrupted_between_its_steps_is_done_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash after persistq.pos is written but before the meta is replaced: the next open converts again."""
    path = copy_fixture(tmp_path)

    def crash(self: FileEngine) -> None:
        raise OSError("killed between the two steps")

    monkeypatch.setattr(FileEngine, "_write_meta", crash)
    with pytest.raises(StorageError, match="killed"):
        await Queue(str(path), serializer=serializers.json).open()
    monkeypatch.undo()
    assert (path / POSITION_FILE).exists()
    assert read_state(path).version == 1
    # Whatever the unfinished conversion left in persistq.pos, the v1 tail decides.
    (path / POSITION_FILE).write_bytes(b"\xff" * 2 * SLOT_SIZE)
    async with Queue(str(path), serializer=serializers.json) as q:
        assert await drain(q) == ["c", "d", "e"]
    assert read_state(path).version == 2


def test_cli_reads_a_directory_of_the_previous_format_without_changing_it(tmp_path: Path) -> None:
    """info and peek on a v1 directory show its waiting items and leave every file as it was."""
    path = copy_fixture(tmp_path)
    files = {p.name: p.read_bytes() for p in path.iterdir()}
    info = json.loads(CliRunner().invoke(cli, ["info", str(path), "--json"]).stdout)
    assert info["queues"][0]["counts"] == {"ready": 3, "corrupt": 0}
    peek = json.loads(CliRunner().invoke(cli, ["peek", str(path), "--json"]).stdout)
    assert [i["data"] for i in peek["items"]] == ["c", "d", "e"]
    assert {p.name: p.read_bytes() for p in path.iterdir()} == files


# ------------------------------------------------------------ inspection API


async def test_inspection_leaves_out_items_done_out_of_order(tmp_path: Path) -> None:
    """read_state and scan_segments (and the CLI's info and peek) skip items done behind held ones."""
    path = tmp_path / "q"
    async with Queue(str(path), chunksize=4, serializer=serializers.json) as q:
        await q.put_many(range(12))
        await take_in_own_tasks(q, 6, done={1, 2, 4})
        state = read_state(path)
        assert isinstance(state.position, ReadPosition)
        assert state.position.oldest == (0, file_engine.HEADER_SIZE)
        assert len(state.position.done) == 2
        segments, problems = scan_segments(path, state)
        assert problems == []
        payloads = [json.loads(data) for s in segments for _, data in s.records]
        assert payloads == [0, 3, 5, *range(6, 12)]
        info = json.loads(CliRunner().invoke(cli, ["info", str(path), "--json"]).stdout)
        assert info["queues"][0]["counts"] == {"ready": 9, "corrupt": 0}
        assert info["queues"][0]["locked"] is True
        peek = json.loads(CliRunner().invoke(cli, ["peek", str(path), "-n", "3", "--json"]).stdout)
        assert [i["data"] for i in peek["items"]] == [0, 3, 5]
    assert await contents(path, serializers.json) == [0, 3, 5, *range(6, 12)]
