"""The command line: ``persistq`` (console script) and ``python -m persistq``.

Commands inspect and maintain queues on disk or on a MySQL server: ``info``
(alias ``stats``), ``peek``, ``requeue`` (alias ``redrive``), ``purge``,
``verify``, ``vacuum`` (alias ``compact``) and ``migrate``. A TARGET is an
SQLite queue directory (``data.db`` inside) or database file, a file-queue
directory, or a MySQL DSN (``mysql://user:pass@host:port/db?table=name``).

Every command calls the inspection and maintenance API
(:mod:`persistq.sync.admin`, the blocking face of :mod:`persistq.admin`) and
only parses arguments, asks for confirmation, decodes and formats: the SQL,
the file formats and the drivers are the engines'. Inspection (``info``,
``peek``, ``verify``) never changes a queue and works while producers and
consumers run; ``requeue`` opens the ack queue with its own class.

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
import functools
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import click

from . import serializers as _serializers
from .errors import CorruptionError, PersistQError, QueueLocked, SerializerMismatch, StorageError
from .sync import admin

__all__ = ("cli", "main")

F = TypeVar("F", bound=Callable[..., Any])

_SERIALIZERS = ("pickle", "json", "msgpack", "cbor2")
_PEEK_STATUS = sorted(s.replace("_", "-") for s in admin.PEEK_STATUSES)
"""The ``--status`` choices: the API's statuses, spelled as options are."""


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
    if isinstance(exc, admin.InspectionError):
        return str(exc)  # the API's messages name the place and say what to do
    if isinstance(exc, QueueLocked):
        return f"{exc} (is a consumer or producer running? stop it first)"
    if isinstance(exc, CorruptionError):
        return f"corrupt queue: {exc} (run 'persistq verify' for details)"
    if isinstance(exc, SerializerMismatch):
        return str(exc)
    if isinstance(exc, FileNotFoundError):
        return f"{exc.filename or exc}: no such file or directory"
    if isinstance(exc, OSError) and not isinstance(exc, StorageError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror}"
    return str(exc) or type(exc).__name__


class _Group(click.Group):
    """Turns persistq and OS errors of any command into exit code 1 with one line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (PersistQError, OSError) as exc:
            raise _Failed(_describe(exc)) from exc


# ----------------------------------------------------------------- targets


def _target(target: str, db_file: str | None) -> admin.Target:
    return admin.locate(target, db_file)


def _no_table_for_files(t: admin.Target, table: str | None) -> None:
    if t.engine == "file" and table is not None:
        raise click.UsageError("--table does not apply to a file queue (one queue per directory)")


def _table_for(t: admin.Target, table: str | None) -> str | None:
    """``--table`` as the API takes it: ignored for a file queue (one queue per directory)."""
    return None if t.engine == "file" else table


def _usage_errors(f: F) -> F:
    """A TARGET naming no storage persistq knows is bad usage (exit 2), like a bad option."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except admin.LocationError as exc:
            raise click.BadParameter(str(exc), param_hint=None if exc.scheme else "TARGET") from None

    return wrapper  # type: ignore[return-value]


def _target_args(f: F) -> F:
    """TARGET and the options every queue command takes."""
    f = _usage_errors(f)
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


def _store_json(store: admin.StoreInfo) -> dict[str, Any]:
    out: dict[str, Any] = {"target": store.target, "engine": store.engine}
    if store.database is not None:
        out["database"] = store.database
    if store.journal_mode is not None:
        out["journal_mode"] = store.journal_mode
    out["durability"] = store.durability
    out["bytes_on_disk"] = store.bytes_on_disk
    out["queues"] = [_queue_json(q) for q in store.queues]
    if store.hint is not None:
        out["hint"] = store.hint
    return out


def _queue_json(q: admin.QueueInfo) -> dict[str, Any]:
    out: dict[str, Any] = {
        "table": q.table,
        "name": q.name,
        "kind": q.kind,
        "engine": q.engine,
        "serializer": q.serializer,
        "durability": q.durability,
    }
    if q.engine == "file":
        out["chunksize"] = q.chunksize
        out["segments"] = q.segments
    out["counts"] = dict(q.counts)
    out["total"] = q.total
    out["oldest_age_seconds"] = q.oldest_age_seconds
    out["bytes"] = q.bytes
    if q.engine == "file":
        out["locked"] = q.locked
        out["problems"] = list(q.problems)
    return out


def _record_json(t: admin.Target, ref: admin.QueueRef, r: admin.RawRecord) -> dict[str, Any]:
    """A record's fields as ``peek`` shows them (its data is added after decoding)."""
    if t.engine == "file":
        return {"segment": r.segment, "offset": r.offset}
    if ref.order == "key":
        return {"key": r.key}
    out: dict[str, Any] = {"id": r.id, "timestamp": r.timestamp}
    if ref.ack:
        out["status"] = r.status
        out["attempts"] = r.attempts
    if ref.order == "priority":
        out["priority"] = r.priority
    return out


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
    t = _target(target, db_file)
    if t.engine == "persist-queue-file":
        info = _store_json(admin.inspect(t))
        if as_json:
            _emit_json(info)
        else:
            click.echo(f"{target}: {info['hint']}")
        return
    _no_table_for_files(t, table)
    info = _store_json(admin.inspect(t, table=table))
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
    type=click.Choice(_PEEK_STATUS),
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
    t = _target(target, db_file)
    ref, records = admin.peek(t, table=_table_for(t, table), n=count, status=status.replace("-", "_"))
    where = ref.table or t.path
    decoder = _Decoder(serializer or ref.serializer, trust, raw)
    items = []
    for record in records:
        item = _record_json(t, ref, record)
        item["size"] = len(record.data)
        item["decoded"], item["data"] = decoder.decode(record.data)
        items.append(item)
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
    t = _target(target, db_file)
    q = admin.ack_queue(t, table=table)
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
    done = admin.requeue(
        t, table=q.table, failed=failed, expired=expired, all_in_flight=all_in_flight, ids=list(ids) or None
    )
    result = {
        "table": done.table,
        "failed_requeued": done.failed_requeued,
        "in_flight_returned": done.in_flight_returned,
    }
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
    t = _target(target, db_file)
    if t.engine == "file":
        _no_table_for_files(t, table)
        n = admin.inspect(t).queues[0].total
        if not yes:
            click.confirm(f"Delete all {n} item(s) of the file queue {target}?", abort=True)
        result: dict[str, Any] = {"target": target, "purged": admin.purge(t)}
    elif t.engine == "sqlite":
        queues = admin.inspect(t, table=table).queues
        if not queues:
            raise _Failed(f"{t.path}: holds no queue")
        if not yes:
            what = ", ".join(f"{q.table} ({q.total})" for q in queues)
            click.confirm(f"Delete the items of {what} in {t.path}?", abort=True)
        result = {"target": t.path, "purged": admin.purge(t, table=table, in_flight=in_flight)}
    else:
        refs = admin.list_queues(t, table=table)
        if not refs:
            raise _Failed(f"{t.shown}: holds no queue")
        if not yes:
            click.confirm(f"Delete the items of {', '.join(str(q.table) for q in refs)}?", abort=True)
        result = {"target": t.shown, "purged": admin.purge(t, table=table, in_flight=in_flight)}
    if as_json:
        _emit_json(result)
    else:
        for name, n in result["purged"].items():
            click.echo(f"{name}: {n} item(s) deleted")


@cli.command("verify")
@_target_args
@_json_option
def verify_command(target: str, db_file: str | None, table: str | None, as_json: bool) -> None:
    """Check a queue's storage; exit 1 if anything is damaged.

    SQLite: PRAGMA integrity_check. File queue: the metadata, every segment
    header and every record's checksum from the read position on (each damaged
    record is reported with its file and offset). MySQL: CHECK TABLE.
    """
    t = _target(target, db_file)
    report = admin.verify(t, table=_table_for(t, table))
    if as_json:
        _emit_json(
            {
                "target": t.shown,
                "ok": report.ok,
                "checked": report.checked,
                "problems": report.problems,
                "warnings": report.warnings,
            }
        )
    else:
        for w in report.warnings:
            click.echo(f"warning: {w}", err=True)
        for problem in report.problems:
            click.echo(f"problem: {problem}", err=True)
        if report.ok:
            checked = report.checked
            click.echo(f"{t.shown}: ok ({len(checked)} checked: {', '.join(checked) or 'nothing'})")
    if not report.ok:
        raise _Problems(f"{t.shown}: {len(report.problems)} problem(s) found")


def _vacuum(target: str, db_file: str | None, table: str | None, as_json: bool) -> None:
    t = _target(target, db_file)
    done = admin.vacuum(t, table=_table_for(t, table))
    result = {"target": t.shown, "bytes_before": done.bytes_before, "bytes_after": done.bytes_after}
    if as_json:
        _emit_json(result)
    elif t.engine == "mysql":
        click.echo(f"{t.shown}: OPTIMIZE TABLE done")
    else:
        click.echo(f"{t.shown}: {_size(done.bytes_before)} -> {_size(done.bytes_after)}")


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


_BARS = {"items": ("migrating", 1000), "pages": ("copying", 10_000)}
"""Per unit of migration progress: the bar's label, and from how many units on a bar is worth showing."""


class _Progress:
    """A progress bar on a terminal's stderr for long migrations; silent otherwise."""

    def __init__(self, show: bool) -> None:
        self._show = show and sys.stderr.isatty()
        self._bar: Any = None
        self._done = 0

    def __call__(self, done: int, total: int, unit: str) -> None:
        """Advance the bar to ``done`` of ``total``."""
        label, least = _BARS.get(unit, ("copying", 1000))
        if self._bar is None and self._show and total >= least:
            self._bar = click.progressbar(length=total, label=label, file=sys.stderr)
            self._bar.__enter__()
        if self._bar is not None:
            self._bar.update(done - self._done)
        self._done = done

    def close(self) -> None:
        """Finish the bar, if one is shown."""
        if self._bar is not None:
            self._bar.__exit__(None, None, None)


@contextlib.contextmanager
def _progress(show: bool) -> Iterator[_Progress]:
    bar = _Progress(show)
    try:
        yield bar
    finally:
        bar.close()


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
    with _progress(not quiet) as bar:
        done = admin.migrate(src, dst, serializer=serializer, progress=bar)
    if done.kind == "file":
        moved = done.items
        click.echo(f"migrated {moved} item{'s' if moved != 1 else ''} from {src} to {dst}")
        return
    tables = ", ".join(done.tables) or "none"
    click.echo(f"copied {done.source} to {done.destination}: {len(done.tables)} queue table(s): {tables}")
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
