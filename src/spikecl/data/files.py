"""Input files of a data set: where they are, their decompressed copies and their identity.

SHD is published gzip'd (``shd_train.h5.gz``) and some mirrors zip it; either is decompressed once into
``<cache_dir>/downloads/`` (never next to the user's files) and reused while the source keeps its size and
mtime. A file's identity for the binned cache is its size, mtime and SHA-1; the SHA-1 is remembered in
``<cache_dir>/hashes/`` so that it is computed only when the file changes.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

from spikecl.errors import ConfigError
from spikecl.utils.atomic import atomic_path, write_json

log = logging.getLogger(__name__)

EMBEDDED_ROOT = Path(__file__).resolve().parent / "embedded"
COMPRESSED_SUFFIXES = (".gz", ".zip")
HOW_TO_GET_SHD = (
    "Get SHD from https://zenkelab.org/datasets/ (shd_train.h5.gz and shd_test.h5.gz; .gz/.zip are read "
    "as they are) into ~/data/hdspikes, or set SPIKECL_DATA or dataset.root to their folder. "
    "dataset=synthetic (the default) uses the embedded data set instead."
)


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


def find_input(folder: Path, filename: str, key: str) -> Path:
    """The file ``filename`` in ``folder``, else its ``.gz`` or ``.zip`` download; ConfigError if none."""
    candidates = [folder / filename]
    if not filename.endswith(COMPRESSED_SUFFIXES):
        candidates += [folder / (filename + suffix) for suffix in COMPRESSED_SUFFIXES]
    for path in candidates:
        if path.is_file():
            return path
    where = "the embedded data set folder" if folder == EMBEDDED_ROOT else "dataset.root"
    state = "" if folder.is_dir() else " (the folder does not exist)"
    raise ConfigError(
        f"dataset.{key}={filename!r} not found in {where} {folder}{state}; looked for "
        f"{', '.join(p.name for p in candidates)}. " + HOW_TO_GET_SHD
    )


def readable_copy(path: Path, cache_dir: Path) -> Path:
    """``path`` itself if it is plain HDF5, else its decompressed copy in ``<cache_dir>/downloads/``."""
    if not path.name.endswith(COMPRESSED_SUFFIXES):
        return path
    st = path.stat()
    stem = path.name.rsplit(".", 1)[0]
    folder = cache_dir / "downloads"
    prefix = f"{Path(stem).stem}.{_path_tag(path)}."
    target = folder / f"{prefix}{st.st_size}-{st.st_mtime_ns}{Path(stem).suffix or '.h5'}"
    if target.is_file():
        return target
    log.info("decompressing %s into %s (once; reused while the file is unchanged)", path, target)
    try:
        with atomic_path(target) as tmp, open(tmp, "wb") as out:
            if path.name.endswith(".gz"):
                with gzip.open(path, "rb") as src:
                    shutil.copyfileobj(src, out, length=1 << 22)
            else:
                with zipfile.ZipFile(path) as archive, archive.open(_zip_member(archive, stem, path)) as src:
                    shutil.copyfileobj(src, out, length=1 << 22)
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ConfigError(
            f"{path}: cannot decompress it ({exc}); the download is probably incomplete or damaged, "
            "download it again"
        ) from exc
    for stale in folder.glob(f"{prefix}*"):
        if stale != target:  # a copy of an older version of the same source file
            stale.unlink(missing_ok=True)
    return target


def file_identity(path: Path, cache_dir: Path) -> dict[str, Any]:
    """Size, mtime and SHA-1 of ``path``; the SHA-1 is cached per (path, size, mtime)."""
    st = path.stat()
    record = cache_dir / "hashes" / f"{_path_tag(path)}.json"
    ident = {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    try:
        known = json.loads(record.read_text(encoding="utf-8"))
        if {k: known.get(k) for k in ident} == ident and isinstance(known.get("sha1"), str):
            return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha1": known["sha1"]}
    except (OSError, ValueError, AttributeError):
        pass  # no record yet, or an unreadable one: hash again
    with open(path, "rb") as fh:
        sha1 = hashlib.file_digest(fh, "sha1").hexdigest()
    write_json(record, {**ident, "sha1": sha1})
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha1": sha1}


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
