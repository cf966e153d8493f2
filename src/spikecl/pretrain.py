"""The pretraining cache: the pretrained model is a function of its inputs, so a sweep trains it once.

Pretraining itself is the continual-learning loop on task 0 (:class:`spikecl.cl.Strategy` with no
plugins). Its cache key hashes exactly what determines the result, as plain values given by the
experiment: the code fingerprint, the data (content fingerprint), the partition, the split (without what
is learned later) with the resulting pretraining train and test indices, the model, the pretraining
schedule and loss regulariser, and the seed. An entry holds the weights and whatever the training
function returned (timings, per-epoch metric rows); it is written atomically, and a file lock makes
parallel jobs that need the same entry wait for the first one instead of training twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spikecl.data import SpikeDataset
from spikecl.models.lif import RSNN
from spikecl.utils.atomic import write_with
from spikecl.utils.locks import file_lock

log = logging.getLogger(__name__)

CACHE_FORMAT = 2
# A pretraining on the real SHD takes hours on a CPU: a job waits that long for another one before giving up.
LOCK_TIMEOUT_S = 24 * 3600


def data_fingerprint(data: SpikeDataset) -> str:
    """Hash of the binned data set's content (events, labels, speakers, file of origin)."""
    h = hashlib.blake2b(digest_size=16)
    s = data.spikes
    for arr in (s.offsets, s.steps, s.units, s.counts, data.labels, data.speakers, data.from_test_file):
        h.update(np.ascontiguousarray(arr).tobytes())
    h.update(f"{s.nb_steps}/{s.nb_units}".encode())
    return h.hexdigest()


def index_hash(indices: np.ndarray) -> str:
    """Short hash of a set of sample indices (as int64, in their order)."""
    return hashlib.blake2b(np.asarray(indices, dtype=np.int64).tobytes(), digest_size=16).hexdigest()


def cache_key(fields: Mapping[str, Any]) -> str:
    """Key of the pretrained model for ``fields`` (JSON-able values that determine it)."""
    return hashlib.sha256(json.dumps({"format": CACHE_FORMAT, **fields}, sort_keys=True).encode()).hexdigest()[:24]


def _load(path: Path, model: RSNN) -> dict[str, Any] | None:
    """The cache entry at ``path`` loaded into ``model``, or None if absent or unreadable."""
    if not path.exists():
        return None
    try:
        entry = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(entry["state_dict"])
        return entry
    except Exception as exc:  # a corrupt entry is retrained, never trusted
        log.warning("pretraining cache entry %s is unreadable (%s): training again", path, exc)
        return None


def pretrained(model: RSNN, key: str, cache_dir: str | Path, device: torch.device,
               train: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], bool]:
    """Load the pretrained weights of ``key`` from the cache, or call ``train()`` and store the result.

    Returns the entry's info (whatever ``train`` returned) and whether it came from the cache.
    """
    folder = Path(cache_dir).expanduser() / "pretrained"
    path = folder / f"{key}.pt"
    with file_lock(folder / f"{key}.lock", timeout=LOCK_TIMEOUT_S, what="pretraining the same model"):
        entry = _load(path, model)
        if entry is not None:
            log.info("pretrained model loaded from the cache (%s); pretraining skipped", path)
            model.to(device)
            return entry["info"], True
        info = train()
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        try:
            write_with(path, lambda tmp: torch.save({"state_dict": state, "info": info}, tmp))
            log.info("pretrained model stored in the cache (%s)", path)
        except OSError as exc:  # a full disk must not lose a finished pretraining: the run goes on
            log.warning("could not store the pretrained model in the cache (%s); the run continues", exc)
        return info, False
