"""Owner tokens: who holds a claimed item, and whether that holder still lives.

A token is ``"pid:start:nonce"``: the process id, the process start time where
the platform tells it (so a recycled pid is not mistaken for the old process),
and a nonce unique to one open queue object. Items claimed by a dead owner can
be given back safely; items of a live owner in another process never are.
"""

from __future__ import annotations

import os
import secrets
import sys

__all__ = ("new_owner", "owner_alive", "release_owner")

_LIVE: set[str] = set()


def _proc_stat(pid: int) -> list[bytes] | None:
    """The fields of /proc/PID/stat after the command name, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name, in parentheses, may itself contain spaces or ")".
    return stat[stat.rfind(b")") + 2 :].split()


def _start_time(pid: int) -> str:
    fields = _proc_stat(pid) if os.path.exists("/proc/self/stat") else None
    # Field 22 of the stat line (starttime) is the 20th after the name.
    return fields[19].decode() if fields is not None and len(fields) > 19 else ""


def new_owner() -> str:
    """Return a fresh token for a queue object of this process, marked live."""
    pid = os.getpid()
    token = f"{pid}:{_start_time(pid)}:{secrets.token_hex(6)}"
    _LIVE.add(token)
    return token


def release_owner(token: str) -> None:
    """Mark a token of this process as no longer live (its queue was closed)."""
    _LIVE.discard(token)


def _pid_exists(pid: int) -> bool:
    if pid <= 0:
        return False
    if sys.platform == "win32":  # pragma: no cover - not exercised on Linux CI
        import ctypes

        kernel32 = ctypes.windll.kernel32
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        try:
            code = ctypes.c_ulong()
            # A process that exited but whose handle someone still holds opens
            # fine: only STILL_ACTIVE (259) means it runs.
            return bool(kernel32.GetExitCodeProcess(handle, ctypes.byref(code))) and code.value == 259
        finally:
            kernel32.CloseHandle(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if os.path.exists("/proc/self/stat"):
        # A killed process that its parent has not reaped yet (a zombie) still
        # answers kill(0), but it will never finish its work.
        fields = _proc_stat(pid)
        if fields is None or (fields and fields[0] in (b"Z", b"X")):
            return False
    return True


def owner_alive(token: str) -> bool:
    """Whether the holder named by ``token`` may still be working on its items."""
    pid_text, _, rest = token.partition(":")
    start, _, _nonce = rest.partition(":")
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if pid == os.getpid() and start == _start_time(pid):
        return token in _LIVE
    if not _pid_exists(pid):
        return False
    return not start or start == _start_time(pid)
