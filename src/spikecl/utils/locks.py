"""Exclusive file locks that make parallel jobs wait for each other instead of repeating work.

:func:`file_lock` holds an ``fcntl.flock`` lock on a lock file for the duration of a ``with`` block. The
holder writes its host, pid and start time into the file, so that a job that has to wait, or gives up, can
say who holds it. The operating system releases a lock when its holder dies, so a lock file never has to be
deleted (deleting one while others wait on it would let two jobs in at once).

Some cluster file systems do not support locks (Lustre mounted without ``flock``, some NFS set-ups): there
the lock is skipped with one warning per process, and the callers rely on their atomic writes instead
(every job then does the work itself, and the last rename wins).
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from hydra.errors import CompactHydraException

try:
    import fcntl
except ImportError:  # Windows: no flock
    fcntl = None

log = logging.getLogger(__name__)

# flock's errors that mean "this file system cannot lock", not "somebody holds the lock".
UNSUPPORTED = frozenset(
    code for code in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EINVAL) if code
)
POLL_S = (0.05, 1.0)  # first and longest pause between two attempts while waiting
_warned_unsupported = False  # the fallback warns once per process, not once per lock


class LockTimeout(CompactHydraException, TimeoutError):
    """A lock was not free within the timeout; ``path`` is the lock file, ``holder`` who holds it."""

    def __init__(self, message: str, path: Path, holder: str) -> None:
        super().__init__(message)
        self.path = path
        self.holder = holder


@contextmanager
def file_lock(path: str | os.PathLike[str], *, timeout: float, what: str) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (created with its folder if missing) while the block runs.

    ``what`` says what the lock guards, for the messages (e.g. "the decompressed copy of shd_train.h5.gz").
    If another process holds the lock, one line is logged and the call waits up to ``timeout`` seconds
    (0: not at all), then raises :class:`LockTimeout` naming the lock file and its holder. Where the file
    system does not support locks, the block runs without one (one warning per process).
    """
    path = Path(path)
    if fcntl is None:
        _warn_unsupported(path, "fcntl is not available on this system")
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        if not _acquire(fd, path, timeout, what):
            yield
            return
        try:
            _write_holder(fd)
            yield
        finally:
            os.ftruncate(fd, 0)  # a free lock names nobody
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(fd: int, path: Path, timeout: float, what: str) -> bool:
    """Take the lock, waiting up to ``timeout`` s; False if locks are unsupported here (then none is held)."""
    deadline = time.monotonic() + timeout
    pause = POLL_S[0]
    waiting = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            pass  # held by another process (or another open of the file in this one)
        except OSError as exc:
            if exc.errno in UNSUPPORTED:
                _warn_unsupported(path, exc.strerror or str(exc))
                return False
            raise
        holder = _read_holder(path)
        now = time.monotonic()
        if now >= deadline:
            waited = f"waited {timeout:g} s" if timeout > 0 else "it is busy"
            raise LockTimeout(
                f"{what}: the lock file {path} is held by {holder}; {waited}; if that process is still "
                f"working, let it finish and rerun; if it hangs, stop it, and the lock frees itself",
                path,
                holder,
            )
        if not waiting and timeout > 0:
            log.info("waiting for %s: %s is held by %s (up to %g s)", what, path, holder, timeout)
            waiting = True
        time.sleep(min(pause, deadline - now))
        pause = min(2 * pause, POLL_S[1])


def _write_holder(fd: int) -> None:
    """Record who holds the lock (read by waiting processes for their messages)."""
    text = f"pid {os.getpid()} on host {socket.gethostname()} since {datetime.now().isoformat(timespec='seconds')}\n"
    os.ftruncate(fd, 0)
    os.pwrite(fd, text.encode("utf-8"), 0)


def _read_holder(path: Path) -> str:
    """Who holds the lock at ``path``, as its holder wrote it."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        text = ""
    return text or "another process (it has not written its name yet)"


def _warn_unsupported(path: Path, reason: str) -> None:
    global _warned_unsupported
    if _warned_unsupported:
        return
    _warned_unsupported = True
    log.warning(
        "file locks are not supported for %s (%s); going on without locks: parallel jobs may repeat the same "
        "decompression, binning or pretraining (their atomic writes keep the results intact)",
        path, reason,
    )
