"""Input files of a data set: where they are, their decompressed copies and their identity.

SHD is published gzip'd (``shd_train.h5.gz``) and some mirrors zip it; either is decompressed once into
``<cache_dir>/downloads/`` (never next to the user's files) and reused while the source keeps its
:func:`stat_key`. A file's identity for the binned cache is its size, mtime and SHA-1; the SHA-1 is remembered
in ``<cache_dir>/hashes/`` under the same key, so that it is computed again only when the file may have changed.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

from spikecl.errors import ConfigError
from spikecl.utils.atomic import atomic_path, write_json
from spikecl.utils.cache_dir import cache_lock
from spikecl.utils.locks import file_lock

log = logging.getLogger(__name__)

EMBEDDED_ROOT = Path(__file__).resolve().parent / "embedded"
COMPRESSED_SUFFIXES = (".gz", ".zip")
DECOMPRESS_CHUNK = 1 << 22  # bytes per read and write while decompressing
# A job waits this long for another job that decompresses the same download (SHD: seconds to minutes).
DECOMPRESS_LOCK_TIMEOUT_S = 3600.0
# tonic.datasets.SHD / SSC keep their files in <save_to>/SHD/ and <save_to>/SSC/: such a root is read in place.
TONIC_SUBFOLDERS = ("SHD", "SSC")
HOW_TO_GET_SHD = (
    "Get SHD from https://zenkelab.org/datasets/ (shd_train.h5.gz and shd_test.h5.gz; for SSC "
    "ssc_train/valid/test.h5.gz; .gz/.zip are read as they are) into ~/data/hdspikes, or set SPIKECL_DATA "
    "or dataset.root to their folder (or to a tonic save_to folder holding SHD/ or SSC/). "
    "dataset=synthetic (the default) uses the embedded data set instead."
)
# What a data set other than SHD and SSC is, and how to make it: by dataset.name (the experiments set it).
HOW_TO_GET = {
    "digits": (
        "This experiment expects ten spoken digits (labels 0-9) in SHD format, shd_train.h5 and shd_test.h5, "
        "e.g. the Free Spoken Digit Dataset converted with python -m spikecl.convert "
        "free-spoken-digit-dataset/recordings data/fsdd --test-takes 0-4 (docs/convert.md; needs the synth "
        "extra); then set dataset.root=data/fsdd (or to ../shared/data/fsdd-dev where you have it)."
    ),
}
HOW_TO_MAKE_YOUR_OWN = (
    "Put SHD-format files there (python -m spikecl.convert makes them from your recordings: docs/convert.md), "
    "or set dataset.root to their folder."
)


def how_to_get(name: str) -> str:
    """Where the files of the data set ``name`` (``dataset.name``) come from, for messages about missing files."""
    if name in ("shd", "ssc"):
        return HOW_TO_GET_SHD
    return HOW_TO_GET.get(name, HOW_TO_MAKE_YOUR_OWN)


def data_root(root: str | os.PathLike[str] | None) -> Path:
    """The folder of the data files: ``root`` with ``~`` expanded, or the embedded data set if None."""
    if root is None:
        if not EMBEDDED_ROOT.is_dir():
            raise ConfigError(
                f"dataset.root=null selects the embedded data set, but {EMBEDDED_ROOT} is missing from "
                "this installation. Set dataset.root to a folder holding SHD-format files "
                "(e.g. one written by the synthetic-data generator), or use dataset=shd. " + HOW_TO_GET_SHD
            )
        return EMBEDDED_ROOT
    return Path(os.path.expanduser(str(root)))


def find_input(folder: Path, filename: str, key: str, name: str = "shd") -> Path:
    """The file ``filename`` in ``folder``, else its ``.gz`` or ``.zip`` download, else the same in
    ``folder``'s tonic subfolders ``SHD/`` and ``SSC/``; ConfigError if none, saying how to get the files of the
    data set ``name``."""
    names = [filename]
    if not filename.endswith(COMPRESSED_SUFFIXES):
        names += [filename + suffix for suffix in COMPRESSED_SUFFIXES]
    for place in (folder, *(folder / sub for sub in TONIC_SUBFOLDERS)):
        for path in (place / name for name in names):
            if path.is_file():
                return path
    where = "the embedded data set folder" if folder == EMBEDDED_ROOT else "dataset.root"
    state = "" if folder.is_dir() else " (the folder does not exist)"
    raise ConfigError(
        f"dataset.{key}={filename!r} not found in {where} {folder}{state}; looked for "
        f"{', '.join(names)} there and in its {' and '.join(s + '/' for s in TONIC_SUBFOLDERS)} subfolders "
        "(tonic's layout). " + how_to_get(name)
    )


def readable_copy(path: Path, cache_dir: Path) -> Path:
    """``path`` itself if it is plain HDF5, else its decompressed copy in ``<cache_dir>/downloads/``.

    The copy is written atomically (a half-written one never has the final name) and under a lock, so
    parallel jobs decompress a download once: the others wait and take the first one's copy. ConfigError
    for a damaged download and for a cache folder that refuses the copy (full disk, no permission).
    """
    if not path.name.endswith(COMPRESSED_SUFFIXES):
        return path
    stem = path.name.rsplit(".", 1)[0]
    folder = cache_dir / "downloads"
    prefix = f"{Path(stem).stem}.{_path_tag(path)}."
    version = "-".join(str(v) for v in stat_key(path).values())
    target = folder / f"{prefix}{version}{Path(stem).suffix or '.h5'}"
    if target.is_file():
        return target
    what = f"the decompressed copy of {path}"
    with file_lock(cache_lock(cache_dir, target), timeout=DECOMPRESS_LOCK_TIMEOUT_S, what=what):
        if target.is_file():  # another job finished it while this one waited
            return target
        log.info("decompressing %s into %s (once; reused while the file is unchanged)", path, target)
        try:
            with atomic_path(target) as tmp, open(tmp, "wb") as out, closing(_decompressed(path, stem)) as chunks:
                for chunk in chunks:
                    out.write(chunk)
        except OSError as exc:  # reading errors are ConfigErrors already: this is the cache refusing the copy
            raise ConfigError(
                f"cache_dir={cache_dir} is not valid; cannot write the decompressed copy of {path} into {folder} "
                f"({exc.strerror or exc}); free space there or give another folder, e.g. "
                "cache_dir=/scratch/$USER/spikecl-cache"
            ) from exc
    for stale in folder.glob(f"{prefix}*"):
        if stale != target:  # a copy of an older version of the same source file
            stale.unlink(missing_ok=True)
    return target


def _decompressed(path: Path, stem: str) -> Iterator[bytes]:
    """The decompressed content of the ``.gz``/``.zip`` download ``path``, in chunks; ConfigError if damaged."""
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as src:
                yield from iter(lambda: src.read(DECOMPRESS_CHUNK), b"")
        else:
            with zipfile.ZipFile(path) as archive, archive.open(_zip_member(archive, stem, path)) as src:
                yield from iter(lambda: src.read(DECOMPRESS_CHUNK), b"")
    # zlib.error: a damaged deflate stream; EOFError: a truncated one; OSError: a bad header or CRC.
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
        raise ConfigError(
            f"{path}: cannot decompress it ({exc}); the download is probably incomplete or damaged, "
            "download it again"
        ) from exc


def stat_key(path: Path) -> dict[str, int]:
    """What tells two versions of a file apart without reading it: inode, size, mtime and ctime.

    Size and mtime alone miss an in-place edit that keeps the size and restores the mtime (``touch -r``,
    ``os.utime``, some copy tools); such an edit changes the ctime, which no program can set back, and a
    copy put in the file's place has another inode. A chmod or rename changes the ctime as well: the file is
    then hashed again, which costs time only.
    """
    st = path.stat()
    return {"inode": st.st_ino, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns}


def file_identity(path: Path, cache_dir: Path) -> dict[str, Any]:
    """Size, mtime and SHA-1 of ``path``; the SHA-1 is cached per path and :func:`stat_key`."""
    stamp = stat_key(path)
    record = cache_dir / "hashes" / f"{_path_tag(path)}.json"
    ident = {"path": str(path.resolve()), **stamp}
    try:
        known = json.loads(record.read_text(encoding="utf-8"))
        if {k: known.get(k) for k in ident} == ident and isinstance(known.get("sha1"), str):
            return {"size": stamp["size"], "mtime_ns": stamp["mtime_ns"], "sha1": known["sha1"]}
    except (OSError, ValueError, AttributeError):
        pass  # no record yet, or an unreadable one: hash again
    with open(path, "rb") as fh:
        sha1 = hashlib.file_digest(fh, "sha1").hexdigest()
    try:
        write_json(record, {**ident, "sha1": sha1})
    except OSError as exc:  # the record only saves time: a full or read-only cache must not stop the run
        log.warning("could not save the hash of %s to %s (%s); it is computed again next time", path, record,
                    exc.strerror or exc)
    return {"size": stamp["size"], "mtime_ns": stamp["mtime_ns"], "sha1": sha1}


def _zip_member(archive: zipfile.ZipFile, wanted: str, path: Path) -> str:
    """The HDF5 member of a zip download: the one named ``wanted``, else the only ``.h5`` member."""
    names = [n for n in archive.namelist() if not n.endswith("/") and not n.startswith("__MACOSX")]
    exact = [n for n in names if Path(n).name == wanted]
    h5 = [n for n in names if n.endswith((".h5", ".hdf5"))]
    if exact:
        return exact[0]
    if len(h5) == 1:
        return h5[0]
    raise ConfigError(f"{path}: expected one HDF5 file ({wanted}) inside the zip archive, found {names}")


def _path_tag(path: Path) -> str:
    """A short stable tag of a file's absolute path, to keep per-file records apart."""
    return hashlib.sha1(str(path.resolve()).encode("utf-8")).hexdigest()[:12]
