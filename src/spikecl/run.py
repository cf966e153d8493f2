"""One experiment from a composed config, in the run folder: what ``python -m spikecl`` calls.

``run(cfg)`` skips a folder that already holds a completed run, attaches ``spikecl.log`` and hands the
config to :class:`spikecl.experiment.Experiment`, which builds everything and writes ``config.yaml``,
``metrics.csv`` (rewritten after every evaluation), ``model.pt``, ``per_group_accuracy.csv`` and, last,
``summary.json``: a folder with a completed summary is a finished run.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from spikecl.experiment import Experiment
from spikecl.report.runs import read_completed_summary

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


def run(cfg: DictConfig, output_dir: str | Path | None = None) -> dict[str, Any]:
    """Run the experiment ``cfg`` and write its run folder; returns the summary."""
    folder = Path(output_dir) if output_dir is not None else hydra_output_dir()
    folder.mkdir(parents=True, exist_ok=True)
    done = read_completed_summary(folder)
    if done is not None:
        log.info("skipping: %s already holds a completed run (delete its summary.json to run it again)", folder)
        return done
    handler = _attach_log_file(folder)
    try:
        return Experiment(cfg, folder).run()
    finally:
        if handler is not None:
            logging.getLogger().removeHandler(handler)
            handler.close()
