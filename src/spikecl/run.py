"""One experiment from a composed config, in the run folder: what ``python -m spikecl`` calls.

``run(cfg)`` reuses a folder that already holds a completed run of the same fingerprint
(:mod:`spikecl.fingerprint`), sets aside one of another, attaches ``spikecl.log`` and hands the config to
:class:`spikecl.experiment.Experiment`, which resumes from the folder's last checkpoint when there is one,
builds everything and writes ``config.yaml``, ``metrics.csv`` (rewritten after every evaluation),
``checkpoints/``, ``model.pt``, ``per_group_accuracy.csv`` and, last, ``summary.json``: a folder with a
completed summary is a finished run.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from spikecl.experiment import Experiment, build_parts
from spikecl.fingerprint import FINGERPRINT_FILE, Fingerprint, compare, fingerprint, set_aside
from spikecl.report.runs import read_completed_summary
from spikecl.utils.atomic import write_json

log = logging.getLogger("spikecl")


def hydra_output_dir() -> Path:
    """Hydra's output folder of the running job."""
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)


def _attach_log_file(folder: Path) -> logging.Handler | None:
    """Outside Hydra (tests, notebooks) write spikecl.log ourselves; Hydra's job logging does it otherwise."""
    target = (folder / "spikecl.log").resolve()
    for h in logging.getLogger().handlers:
        if isinstance(h, logging.FileHandler) and Path(h.baseFilename).resolve() == target:
            return None
    handler = logging.FileHandler(target)
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    logging.getLogger().addHandler(handler)
    if logging.getLogger().level > logging.INFO:
        logging.getLogger().setLevel(logging.INFO)
    return handler


def reuse_or_set_aside(folder: Path, fp: Fingerprint) -> dict[str, Any] | None:
    """The completed summary of ``folder`` if it was made with fingerprint ``fp``; otherwise the earlier
    result files of another fingerprint (finished or not) are renamed aside and None is returned."""
    same, reason = compare(folder, fp)
    if same:
        log.info("skipping: %s already holds a completed run with the same fingerprint (%s)", folder, fp.digest)
        return read_completed_summary(folder)
    if reason is not None:
        set_aside(folder, reason)
    return None


def run(cfg: DictConfig, output_dir: str | Path | None = None) -> dict[str, Any]:
    """Run the experiment ``cfg`` in its run folder and return the summary: a completed run of the same
    fingerprint is reused, a killed one resumes after its last finished task, anything else starts anew."""
    folder = Path(output_dir) if output_dir is not None else hydra_output_dir()
    folder.mkdir(parents=True, exist_ok=True)
    parts = build_parts(cfg)  # a bad value stops here, before any file is read
    handler = _attach_log_file(folder)
    try:
        fp = fingerprint(cfg, parts.files.content(parts.cache_dir))  # the parts built above, not again
        done = reuse_or_set_aside(folder, fp)
        if done is not None:
            return done
        write_json(folder / FINGERPRINT_FILE, fp.to_dict())
        with Experiment(cfg, folder, fingerprint=fp.digest, parts=parts) as experiment:
            experiment.resume()
            return experiment.run()
    finally:
        if handler is not None:
            logging.getLogger().removeHandler(handler)
            handler.close()
