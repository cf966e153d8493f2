"""What produced a run: package versions and the git commit of the source checkout."""

from __future__ import annotations

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
