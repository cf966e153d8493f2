"""A file system without locks (some NFS and Lustre set-ups), made real with a preloaded library whose
flock, fcntl and lockf locks fail with ENOLCK: data sets load and a run finishes, with spikecl's one warning.

The library is compiled here with gcc (the test is skipped without it) and preloaded into a subprocess.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import spikecl.data.shd as shd
from tests.conftest import TINY

ROOT = Path(__file__).resolve().parents[1]
NO_LOCKS = r"""
/* Every file lock fails with ENOLCK, as on a file system without locks. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/file.h>
#include <unistd.h>

int flock(int fd, int operation) { errno = ENOLCK; return -1; }
int lockf(int fd, int cmd, off_t len) { errno = ENOLCK; return -1; }

static int is_lock(int cmd) {
    return cmd == F_SETLK || cmd == F_SETLKW || cmd == F_GETLK
#ifdef F_OFD_SETLK
        || cmd == F_OFD_SETLK || cmd == F_OFD_SETLKW || cmd == F_OFD_GETLK
#endif
        ;
}

/* Other fcntl commands go to the C library (fcntl64 is the name that 64-bit file offsets call). */
#define FORWARD(name)                                                                  \
    int name(int fd, int cmd, ...) {                                                   \
        va_list ap; va_start(ap, cmd); void *arg = va_arg(ap, void *); va_end(ap);     \
        if (is_lock(cmd)) { errno = ENOLCK; return -1; }                               \
        int (*real)(int, int, ...) = (int (*)(int, int, ...))dlsym(RTLD_NEXT, #name);  \
        return real(fd, cmd, arg);                                                     \
    }
FORWARD(fcntl)
FORWARD(fcntl64)
"""
# Under the library: spikecl's lock falls back, and HDF5's default open fails, so the test can fail.
CHECK_THE_SHIM = """
import fcntl, sys, h5py
try:
    with open(sys.argv[1] + ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
    print("flock works")
except OSError as exc:
    print("flock:", exc.strerror)
try:
    h5py.File(sys.argv[1], "r").close()
    print("HDF5 opens with its lock")
except OSError as exc:
    print("HDF5:", exc)
"""


@pytest.fixture(scope="module")
def no_locks(tmp_path_factory) -> Path:
    """The compiled library."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the library that makes locks fail")
    folder = tmp_path_factory.mktemp("no_locks")
    (folder / "no_locks.c").write_text(NO_LOCKS)
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(folder / "no_locks.so"), str(folder / "no_locks.c"), "-ldl"],
                   check=True, capture_output=True)  # fmt: skip
    return folder / "no_locks.so"


def without_locks(library: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HDF5_USE_FILE_LOCKING"}
    env.update(LD_PRELOAD=str(library), HYDRA_FULL_ERROR="0",
               PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def test_the_library_takes_the_locks_away(no_locks, tiny_root, tmp_path):
    proc = without_locks(no_locks, ["-c", CHECK_THE_SHIM, str(tiny_root / "shd_train.h5")], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "flock: No locks available" in proc.stdout and "HDF5:" in proc.stdout, proc.stdout


def test_a_run_on_a_file_system_without_locks(no_locks, tiny_root, tmp_path):
    proc = without_locks(no_locks, ["-m", "spikecl", *TINY, f"dataset.root={tiny_root}",
                                    f"cache_dir={tmp_path / 'cache'}", "split=class_incremental", "split.new_class=2",
                                    f"hydra.run.dir={tmp_path / 'run'}", "hydra/sweeper=basic", "pretrain.epochs=1",
                                    "strategy.epochs=1"], tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "unable to lock" not in out and "Traceback" not in out
    warnings = [line for line in out.splitlines() if "WARNING" in line and "lock" in line]
    assert len(warnings) == 1 and "No locks available" in warnings[0], warnings  # spikecl's fallback, once
    assert (tmp_path / "run" / "summary.json").is_file()


def test_h5py_without_the_locking_option_opens_with_the_environment_variable(tmp_path, monkeypatch):
    path = tmp_path / "a.h5"
    with h5py.File(path, "w") as fh:
        fh["x"] = np.arange(3)
    real, seen = h5py.File, []

    def old_h5py(name, mode="r", **kwargs):  # h5py < 3.5: no locking argument
        if "locking" in kwargs:
            raise TypeError("__init__() got an unexpected keyword argument 'locking'")
        seen.append(os.environ.get("HDF5_USE_FILE_LOCKING"))
        return real(name, mode, **kwargs)

    monkeypatch.delenv("HDF5_USE_FILE_LOCKING", raising=False)
    monkeypatch.setattr(shd.h5py, "File", old_h5py)
    with shd.open_readonly(path) as fh:
        assert fh["x"][...].tolist() == [0, 1, 2]
    assert seen == ["FALSE"]
