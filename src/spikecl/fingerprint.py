"""What determines a run's result, as a fingerprint: a finished run is reused only when it matches.

A run's fingerprint has three parts:

- ``config``: the resolved config without the keys that do not change results (:data:`NOT_RESULTS`: the
  device, progress bars, where caches, loggers and checkpoints go, and the paths of the data files,
  whose *content* is fingerprinted instead);
- ``data``: the SHA-1 of every input file and the binning (``dataset.nb_steps`` etc. are in ``config``);
- ``code``: :func:`spikecl.utils.provenance.code_fingerprint` (version and a hash of the sources).

Every run folder gets ``fingerprint.json``; ``summary.json`` and checkpoints carry the digest. A rerun of a
completed folder with another fingerprint runs again (the old files are kept aside, see
:func:`set_aside`), and the log says which part changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from spikecl.report.runs import SUMMARY_FILE, read_completed_summary
from spikecl.utils.provenance import code_fingerprint

log = logging.getLogger(__name__)

FINGERPRINT_FILE = "fingerprint.json"
# Keys that say where or how a run happens or what it draws, not what it computes. A key the user adds under one of these
# is ignored too.
NOT_RESULTS = ("hydra", "device", "progress", "cache_dir", "checkpoints", "logger", "plots", "dataset.root",
               "dataset.train_file", "dataset.test_file", "dataset.valid_file")
# What a rerun moves aside when a folder's finished or interrupted run no longer matches: the results, the
# records and what the shipped loggers and the plots wrote.
RESULT_FILES = (SUMMARY_FILE, "metrics.csv", "model.pt", "per_group_accuracy.csv", "config.yaml",
                FINGERPRINT_FILE, "checkpoints", "plots", "scalars.csv", "hparams.json", "accuracy_matrix.csv",
                "tensorboard", "mlflow.db", "mlartifacts")


@dataclass(frozen=True)
class Fingerprint:
    """The three parts and their digest."""

    config: dict[str, Any]
    data: list[str]
    code: str

    @property
    def digest(self) -> str:
        """One hash of all three parts."""
        text = json.dumps({"config": self.config, "data": self.data, "code": self.code}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def to_dict(self) -> dict[str, Any]:
        """What ``fingerprint.json`` holds."""
        return {"digest": self.digest, "code": self.code, "data": self.data, "config": self.config}

    def difference(self, old: dict[str, Any]) -> str | None:
        """Why ``old`` (a ``fingerprint.json``) differs from this one, in words; None if it does not."""
        if old.get("digest") == self.digest:
            return None
        reasons = []
        if old.get("code") != self.code:
            reasons.append(f"the code changed ({old.get('code')} -> {self.code})")
        if old.get("data") != self.data:
            reasons.append("the data files' content changed")
        changed = _changed_keys(old.get("config") or {}, self.config)
        if changed:
            shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
            reasons.append(f"the config changed ({shown})")
        return "; ".join(reasons) or "the fingerprint changed"


def fingerprint(cfg: DictConfig, data_sha1s: list[str]) -> Fingerprint:
    """The fingerprint of ``cfg`` with input files of content ``data_sha1s``."""
    # Hydra's own node is dropped before resolving: its ${hydra:...} values exist only inside a running job.
    container = OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True)
    for key in NOT_RESULTS:
        _drop(container, key.split("."))
    return Fingerprint(config=container, data=list(data_sha1s), code=code_fingerprint())


def job_fingerprint(cfg: DictConfig) -> Fingerprint:
    """The fingerprint of the job ``cfg`` describes, its data files' content included (hashed once per file
    and remembered in the cache folder)."""
    if "dataset" not in cfg:  # an app without data files
        return fingerprint(cfg, [])
    from spikecl.build import build  # the data layer only when there is data
    from spikecl.utils.cache_dir import open_cache_dir

    return fingerprint(cfg, build(cfg.dataset, "dataset").content(open_cache_dir(cfg.cache_dir)))


def compare(folder: Path, fp: Fingerprint) -> tuple[bool, str | None]:
    """Whether ``folder`` holds a completed run of fingerprint ``fp`` (reuse it), and, if it holds a run of
    another fingerprint (finished or not), why that differs (run again). A completed summary counts only if
    it records ``fp`` itself: ``fingerprint.json`` may have been written by another run since."""
    summary, old = read_completed_summary(folder), read(folder)
    if summary is None and old is None:
        return False, None
    # a summary that records no fingerprint (not written by spikecl's experiment) is as fingerprint.json says
    made_by = None if summary is None else summary.get("fingerprint", (old or {}).get("digest"))
    if made_by == fp.digest:
        return True, None
    reason = fp.difference(old or {})
    if summary is not None and reason is None:
        reason = f"its summary.json was made by another run (fingerprint {made_by}, not {fp.digest})"
    return False, reason


def reusable(folder: Path, cfg: DictConfig) -> tuple[bool, str | None]:
    """:func:`compare` for the job ``cfg`` (the sweeper's rule); the data files are hashed only when the
    folder holds a run."""
    if not (folder / FINGERPRINT_FILE).exists() and not (folder / SUMMARY_FILE).exists():
        return False, None
    return compare(folder, job_fingerprint(cfg))


def read(folder: Path) -> dict[str, Any] | None:
    """The ``fingerprint.json`` of ``folder``, or None."""
    try:
        return json.loads((folder / FINGERPRINT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def set_aside(folder: Path, reason: str) -> list[str]:
    """Rename the result files of ``folder`` with a ``.stale-<time>`` suffix, so that nothing reads them as
    this run's and nothing is lost; returns the new names."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    moved = []
    for name in RESULT_FILES:
        path = folder / name
        if path.exists():
            target = path.with_name(f"{name}.stale-{stamp}")
            path.rename(target)
            moved.append(target.name)
    if moved:
        log.info("running again in %s: %s; the earlier files are kept as %s", folder, reason, ", ".join(moved))
    return moved


def _drop(container: dict[str, Any], path: list[str]) -> None:
    node = container
    for part in path[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return
    if isinstance(node, dict):
        node.pop(path[-1], None)


def _changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dicts."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new))
        return [k for key in keys for k in _changed_keys(old.get(key), new.get(key), f"{prefix}{key}.")]
    return [] if old == new else [f"{prefix[:-1]}: {old!r} -> {new!r}"]
