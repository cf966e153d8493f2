"""The pretrained-model cache: a pretrained network is a function of what built it, so a sweep trains it once.

Pretraining itself is the continual-learning loop on task 0 (:class:`spikecl.cl.Strategy`). The cache key
(:func:`pretraining_key`) hashes exactly what determines the result, from the built parts: the code
fingerprint, the data's content, the partition, the pretraining task's train, validation and test samples
(and every task's train samples when a pretraining plugin reads them: joint training), the model's factory
with its arguments, the pretraining strategy with its optimiser and plugins, the spike regulariser and the
seed. An entry holds the weights and whatever the training function returned (timings, per-epoch metric
rows); it is written atomically, and a file lock makes parallel jobs that need the same entry wait for the
first one instead of training twice. A cache that cannot be written (a full disk) is warned about and the
run goes on with the model it trained.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from spikecl.checkpoints import save_torch
from spikecl.cl import Strategy
from spikecl.cl.loss import SpikeRegulariser
from spikecl.data import Partition, SpikeDataset, Task
from spikecl.utils.describe import describe
from spikecl.utils.locks import file_lock
from spikecl.utils.provenance import code_fingerprint

log = logging.getLogger(__name__)

CACHE_FORMAT = 3
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


def pretraining_key(*, data: SpikeDataset, partition: Partition, tasks: Sequence[Task], model: Callable[..., nn.Module],
                    pretraining: Strategy, reg: SpikeRegulariser, seed: int) -> str:
    """The cache key of the model that ``pretraining`` trains from ``model`` on task 0 of ``tasks``."""
    samples = {"train": tasks[0].train, "val": tasks[0].val, "test": tasks[0].test}
    if pretraining.plugins:  # a pretraining plugin (joint training) may read the later tasks too
        samples["later_train"] = [t.train for t in tasks[1:]]
    fields = {"format": CACHE_FORMAT, "code": code_fingerprint(), "data": data_fingerprint(data),
              "partition": dataclasses.asdict(partition), "samples": describe(samples), "model": describe(model),
              "pretraining": describe(pretraining), "reg": describe(reg), "seed": seed}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:24]


def _load(path: Path, model: nn.Module) -> dict[str, Any] | None:
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


def pretrained(model: nn.Module, key: str, cache_dir: str | Path, device: torch.device,
               train: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], bool]:
    """Load the pretrained weights of ``key`` from the cache, or call ``train()`` and store the result.

    Returns the entry's info (whatever ``train`` returned: plain values) and whether it came from the cache.
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
            save_torch(path, {"state_dict": state, "info": info})
            log.info("pretrained model stored in the cache (%s)", path)
        except OSError as exc:  # a full disk must not lose a finished pretraining: the run goes on
            log.warning("could not store the pretrained model in the cache (%s); the run continues", exc)
        return info, False
