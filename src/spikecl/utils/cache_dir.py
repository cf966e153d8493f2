"""The cache folder (``cache_dir``): binned data, decompressed downloads, content hashes, pretrained models.

:func:`open_cache_dir` is called once at the start of a run: it turns a bad ``cache_dir`` into one clear
line before any work is done, and clears the temporary files that killed jobs left behind.
:func:`cache_lock` names the lock file that guards the creation of an entry (:mod:`spikecl.utils.locks`).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path

from spikecl.errors import ConfigError
from spikecl.utils.atomic import TEMP_GLOB, TEMP_SUFFIX

log = logging.getLogger(__name__)

STALE_AFTER_S = 24 * 3600.0  # a temporary file untouched this long belongs to a job that is gone
NULL_SPELLINGS = ("", "none", "null")  # how a null reaches us from the command line or a YAML string
FIX = "give a writable folder, e.g. cache_dir=outputs/cache"
LOCKS = "locks"  # <cache_dir>/locks/: the lock files of the cache entries, apart from the entries themselves


def open_cache_dir(path: str | os.PathLike[str] | None) -> Path:
    """The cache folder ``path`` as an absolute path: created, checked writable, stale temporary files removed.

    Raises ConfigError naming ``cache_dir`` for null, for a folder that cannot be created and for one that
    cannot be written into (no permission, read-only or full file system). Temporary files of the atomic
    writers (:data:`spikecl.utils.atomic.TEMP_GLOB`) untouched for :data:`STALE_AFTER_S` are deleted.
    """
    if path is None or str(path).strip().lower() in NULL_SPELLINGS:
        raise ConfigError("cache_dir=null is not valid; give a folder, e.g. cache_dir=outputs/cache")
    folder = Path(os.path.expanduser(str(path))).absolute()
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"cache_dir={path} is not valid; {folder} is a file, not a folder; {FIX}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cache_dir={path} is not valid; cannot create {folder} ({_reason(exc)}); {FIX}") from exc
    _probe(folder, path)
    _remove_stale(folder)
    return folder


def cache_lock(cache_dir: str | os.PathLike[str], entry: str | os.PathLike[str]) -> Path:
    """The lock file that guards the creation of the cache entry ``entry`` (a path inside ``cache_dir``):
    ``<cache_dir>/locks/<entry's path with / as ->.lock``, e.g. ``locks/binned-3f2a.npz.lock``."""
    cache_dir = Path(cache_dir)
    relative = Path(os.path.relpath(Path(entry), cache_dir))
    return cache_dir / LOCKS / ("-".join(relative.parts) + ".lock")


def _probe(folder: Path, given: str | os.PathLike[str]) -> None:
    """Write and delete a small file, so that a folder that refuses writes fails now, not hours later."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", suffix=TEMP_SUFFIX, dir=folder)
        try:
            os.write(fd, b"spikecl write probe\n" * 64)
            os.fsync(fd)  # a full disk may only refuse the data when it is flushed
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise ConfigError(
            f"cache_dir={given} is not valid; cannot write into {folder} ({_reason(exc)}); {FIX}"
        ) from exc


def _remove_stale(folder: Path) -> None:
    """Delete the atomic writers' temporary files under ``folder`` that nobody has touched for a day."""
    cutoff = time.time() - STALE_AFTER_S
    removed = 0
    for leftover in folder.rglob(TEMP_GLOB):
        try:
            if leftover.is_file() and leftover.stat().st_mtime < cutoff:
                leftover.unlink()
                removed += 1
        except OSError:
            continue  # gone already (another job cleaned it) or not ours to delete: harmless
    if removed:
        log.info("removed %d temporary files left in %s by killed jobs", removed, folder)


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)
