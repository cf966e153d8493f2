"""One experiment from a composed config, in its run folder: what ``python -m spikecl`` calls.

``run(cfg)`` hands the config to :class:`spikecl.experiment.Experiment` in Hydra's output folder (or the
folder given): a folder holding a completed run of the same fingerprint is reused, a killed run resumes
after its last finished task, anything else starts anew.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from spikecl.experiment import Experiment


def hydra_output_dir() -> Path:
    """Hydra's output folder of the running job."""
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)


def run(cfg: DictConfig, output_dir: str | Path | None = None) -> dict[str, Any]:
    """Run the experiment ``cfg`` in its run folder and return the summary."""
    with Experiment(cfg, output_dir if output_dir is not None else hydra_output_dir()) as experiment:
        return experiment.run()
