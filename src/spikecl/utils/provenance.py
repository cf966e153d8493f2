"""What produced a run: package versions, the git commit of the source checkout, a fingerprint of the code."""

from __future__ import annotations

import functools
import hashlib
import platform
import subprocess
from pathlib import Path

import spikecl


def git_sha() -> str | None:
    """Commit of the checkout spikecl runs from (with ``-dirty`` if it has local changes); None if unknown."""
    repo = Path(spikecl.__file__).resolve().parents[2]
    if not (repo / "pyproject.toml").is_file():  # an installed wheel: no checkout to ask
        return None
    try:
        sha = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}-dirty" if dirty else sha or None


def versions() -> dict[str, str]:
    """Versions of Python, torch, spikecl and the libraries that shape results."""
    import h5py
    import hydra
    import numpy
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "spikecl": spikecl.__version__,
            "numpy": numpy.__version__, "h5py": h5py.__version__, "hydra": hydra.__version__,
            "cuda": torch.version.cuda or "none"}


def code_fingerprint() -> str:
    """The spikecl version and a hash of its Python sources and packaged configs.

    Used by the pretraining cache and by run fingerprints: any edit of the code that runs, committed or
    not, gives another fingerprint, while a commit that touches only docs or tests does not.
    """
    return f"{spikecl.__version__}+{_source_hash()}"


@functools.cache
def _source_hash() -> str:
    package = Path(spikecl.__file__).resolve().parent
    conf = package / "conf" if (package / "conf").is_dir() else package.parents[1] / "conf"
    parts = [(package, "*.py"), (package.parent / "hydra_plugins", "*.py"), (conf, "*.yaml")]
    h = hashlib.sha256()
    for root, pattern in parts:
        for p in sorted(root.rglob(pattern)) if root.is_dir() else []:
            h.update(f"{root.name}/{p.relative_to(root).as_posix()}".encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:16]
