"""spikecl.utils.locks: waiting, timeouts that name the holder, and the fallback where locks are unsupported."""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from spikecl.utils import locks
from spikecl.utils.locks import LockTimeout, file_lock

HOLDER = """
import sys, time
from spikecl.utils.locks import file_lock
with file_lock(sys.argv[1], timeout=5, what="test"):
    print("locked", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def holder(tmp_path: Path):
    """A real process that holds the lock on tmp_path/'x.lock' until the test ends."""
    path = tmp_path / "x.lock"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        yield path, proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_holder_in_another_process_times_out_naming_it(holder, caplog) -> None:
    path, pid = holder
    caplog.set_level(logging.INFO, logger="spikecl.utils.locks")
    started = time.monotonic()
    with pytest.raises(LockTimeout, match=rf"the binned data: the lock file {path} is held by pid {pid} on host "
                                          r".*waited 0.3 s") as err:  # fmt: skip
        with file_lock(path, timeout=0.3, what="the binned data"):
            pytest.fail("the lock is held by the other process")
    assert 0.3 <= time.monotonic() - started < 3
    assert f"pid {pid}" in err.value.holder and err.value.path == path
    waits = [r for r in caplog.records if "waiting for the binned data" in r.getMessage()]
    assert len(waits) == 1 and f"pid {pid}" in waits[0].getMessage()


def test_timeout_zero_fails_at_once_without_a_waiting_line(holder, caplog) -> None:
    path, pid = holder
    caplog.set_level(logging.INFO, logger="spikecl.utils.locks")
    with pytest.raises(LockTimeout, match="it is busy"):
        with file_lock(path, timeout=0, what="the sweep"):
            pass
    assert "waiting" not in caplog.text


def test_waits_for_the_holder_and_frees_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "y.lock"
    order = []
    inside = threading.Event()

    def first() -> None:
        with file_lock(path, timeout=5, what="test"):
            inside.set()
            time.sleep(0.3)
            order.append("first")

    thread = threading.Thread(target=first)
    thread.start()
    inside.wait(5)
    assert "pid" in path.read_text()  # the holder names itself
    with file_lock(path, timeout=5, what="test"):
        order.append("second")
    thread.join()
    assert order == ["first", "second"]
    assert path.read_text() == ""  # released: nobody named
    with file_lock(path, timeout=0, what="test"):  # free again
        pass


@pytest.mark.parametrize("code", [errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS])
def test_unsupported_locks_fall_back_with_one_warning(tmp_path: Path, monkeypatch, caplog, code: int) -> None:
    def unsupported(fd: int, op: int) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(fcntl, "flock", unsupported)
    monkeypatch.setattr(locks, "_warned_unsupported", False)
    ran = []
    for name in ("a.lock", "b.lock"):
        with file_lock(tmp_path / name, timeout=1, what="test"):
            ran.append(name)
    assert ran == ["a.lock", "b.lock"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "not supported" in warnings[0].getMessage()
    assert os.strerror(code) in warnings[0].getMessage()


def test_other_flock_errors_are_raised(tmp_path: Path, monkeypatch) -> None:
    def broken(fd: int, op: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(fcntl, "flock", broken)
    with pytest.raises(OSError, match="I/O error"):
        with file_lock(tmp_path / "c.lock", timeout=1, what="test"):
            pass
