"""Checkpoints of a run: its state after pretraining and after every task, written atomically, loaded safely.

A checkpoint is ``<run>/checkpoints/task<learned>.pt``: a dict of tensors, numbers, strings, lists and dicts
(no other Python object), loaded with ``torch.load(..., weights_only=True)``, so a file planted in a run
folder can never run code. It is used only when its fingerprint is the run's; an unreadable one is skipped
for an older one. ``policy``: ``last`` keeps the newest only, ``all`` every one, ``none`` none.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spikecl.utils import checks
from spikecl.utils.atomic import write_with

log = logging.getLogger("spikecl")

FOLDER = "checkpoints"
POLICIES = ("last", "all", "none")


def plain(obj: Any) -> Any:
    """``obj`` with NumPy arrays as tensors and NumPy scalars as Python numbers, recursively: what
    ``weights_only`` loading accepts."""
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Mapping):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    return obj


def save_torch(path: Path, obj: Any) -> Path:
    """Write ``obj`` with ``torch.save`` atomically. It is serialised in memory first, so a full disk
    raises an OSError (no space left on device) like every other write, never torch's own RuntimeError."""
    data = io.BytesIO()
    torch.save(obj, data)
    return write_with(path, lambda tmp: tmp.write_bytes(data.getbuffer()))


class Checkpoints:
    """The checkpoints of the run folder ``folder`` (see the module docstring)."""

    def __init__(self, folder: Path, policy: str) -> None:
        self.folder = Path(folder) / FOLDER
        self.policy = checks.one_of("checkpoints", policy, POLICIES)

    def save(self, learned: int, state: dict[str, Any]) -> Path | None:
        """Write the state after ``learned`` tasks (0: pretraining); with ``last`` the older ones go."""
        if self.policy == "none":
            return None
        path = save_torch(self.folder / f"task{learned}.pt", plain(state))
        if self.policy == "last":
            for old in self.folder.glob("task*.pt"):
                if old != path:
                    old.unlink(missing_ok=True)
        return path

    def latest(self, fingerprint: str | None) -> dict[str, Any] | None:
        """The newest readable checkpoint of the run of ``fingerprint``, or None (none there, or of another run)."""
        found = sorted(((int(p.stem[4:]), p) for p in self.folder.glob("task*.pt") if p.stem[4:].isdigit()),
                       reverse=True)
        for learned, path in found:
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as exc:  # unreadable, or holding more than data: never trusted; an older one may be
                log.warning("checkpoint %s is not usable (%s); trying an older one", path,
                            str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                continue
            if not isinstance(state, dict) or state.get("fingerprint") != fingerprint:
                log.info("checkpoint %s is of another experiment (fingerprint differs); starting over", path)
                return None
            log.info("resuming from %s: pretraining and %d learned tasks are done", path, learned)
            return state
        return None
