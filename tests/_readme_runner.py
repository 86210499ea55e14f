"""Runs one Python example of persist-queue's README in this process (see test_persistqueue_readme.py).

Usage: ``python _readme_runner.py SPEC.json`` in the example's fresh directory.
The spec gives the example, already ported to persistq, and where its lines
are in the README (frames carry the README's file name and line numbers):

* ``{"mode": "script", "file": …, "first_line": N, "code": …}``: run the code
  as ``__main__``;
* ``{"mode": "doctest", "file": …, "examples": [{"line": N, "source": …,
  "want": …}]}``: run each ``>>>`` example in one namespace, compare what it
  displays with ``want`` where the README shows an output (an abbreviated
  traceback, ``KeyError: …``, is matched against the exception raised).

The outcome goes to the spec's ``result`` file as JSON: ``{"status": "ok"}``,
``"error"`` (``type``, ``message``, ``line``), ``"mismatch"`` (``line``,
``want``, ``got``), or ``"hang"`` (``line``: where the main thread was after
``hang_after`` seconds; the process then exits at once). The process then
ends normally, so a slow or noisy interpreter exit is the caller's to see.

The README leaves three names to the reader; this prelude defines them:
``num_worker_threads`` (2), ``source()`` (ten strings) and ``do_work(item)``
(records the item). After a script that called ``source()``, every item must
have been worked on.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sys
import threading
import types
from typing import Any

_ABBREVIATED_TRACEBACK = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt): .*$")


def _prelude(done: list[Any], sourced: list[Any]) -> dict[str, Any]:
    def source() -> list[str]:
        items = [f"job-{i}" for i in range(10)]
        sourced.extend(items)
        return items

    def do_work(item: Any) -> None:
        done.append(item)

    return {"__name__": "__main__", "num_worker_threads": 2, "source": source, "do_work": do_work}


def _readme_line(tb: types.TracebackType | None, frame: types.FrameType | None, readme: str) -> int | None:
    """The README line of the innermost frame running README code."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == readme:
            line = tb.tb_lineno
        tb = tb.tb_next
    while line is None and frame is not None:
        if frame.f_code.co_filename == readme:
            line = frame.f_lineno
        frame = frame.f_back
    return line


def _error(exc: BaseException, readme: str) -> dict[str, Any]:
    return {
        "status": "error",
        "type": type(exc).__name__,
        "message": str(exc),
        "line": _readme_line(exc.__traceback__, None, readme),
    }


def _compiled(source: str, readme: str, line: int, mode: str) -> types.CodeType:
    # Padding puts the code at its README line, so frames and tracebacks name it.
    return compile("\n" * (line - 1) + source, readme, mode)


def _run_doctest(spec: dict[str, Any], namespace: dict[str, Any]) -> dict[str, Any]:
    readme = spec["file"]
    for example in spec["examples"]:
        want = example["want"].strip()
        shown = io.StringIO()

        def display(value: object, shown: io.StringIO = shown) -> None:
            if value is not None:
                shown.write(repr(value) + "\n")

        sys.displayhook = display
        try:
            with contextlib.redirect_stdout(shown):
                exec(_compiled(example["source"], readme, example["line"], "single"), namespace)
        except Exception as exc:  # noqa: BLE001 - any error is the example's outcome
            raised = f"{type(exc).__name__}: {exc}"
            last = want.splitlines()[-1] if want else ""
            if want and _ABBREVIATED_TRACEBACK.match(last) and raised == last:
                continue
            return _error(exc, readme)
        finally:
            sys.displayhook = sys.__displayhook__
        got = shown.getvalue().strip()
        if want and got != want:
            return {"status": "mismatch", "line": example["line"], "want": want, "got": got}
    return {"status": "ok"}


def _watchdog(seconds: float, readme: str, result: str) -> threading.Timer:
    main = threading.main_thread().ident

    def fire() -> None:
        frame = sys._current_frames().get(main) if main is not None else None
        _write(result, {"status": "hang", "line": _readme_line(None, frame, readme)})
        os._exit(3)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    return timer


def _write(path: str, outcome: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(outcome, f)


def main() -> None:
    """Run the example the spec file names, and record its outcome."""
    with open(sys.argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    readme = spec["file"]
    done: list[Any] = []
    sourced: list[Any] = []
    namespace = _prelude(done, sourced)
    timer = _watchdog(spec["hang_after"], readme, spec["result"])
    outcome: dict[str, Any]
    if spec["mode"] == "doctest":
        outcome = _run_doctest(spec, namespace)
    else:
        try:
            exec(_compiled(spec["code"], readme, spec["first_line"], "exec"), namespace)
        except Exception as exc:  # noqa: BLE001 - any error is the example's outcome
            outcome = _error(exc, readme)
        else:
            outcome = {"status": "ok"}
            if sorted(done) != sorted(sourced):
                outcome = {"status": "unfinished work", "done": done, "sourced": sourced}
    timer.cancel()
    _write(spec["result"], outcome)


if __name__ == "__main__":
    main()
