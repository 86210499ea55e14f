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


def _start_time(pid: int) -> str:
    if os.path.exists("/proc/self/stat"):
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            return ""
        # Field 22 (starttime) counts after the ")" that ends the command name,
        # which itself may contain spaces or parentheses.
        fields = stat[stat.rfind(b")") + 2 :].split()
        return fields[19].decode() if len(fields) > 19 else ""
    return ""


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

        handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)
        if not handle:
            return False
        ctypes.windll.kernel32.CloseHandle(handle)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
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
