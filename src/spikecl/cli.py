"""The command line: ``python -m spikecl [overrides]`` composes the config from ``conf/`` and runs it.

:func:`main` checks the command line first (keys of earlier releases, an output folder that cannot be
written), each problem in one line, then hands over to Hydra, whose job function is :func:`app`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import hydra
from omegaconf import DictConfig

from spikecl.errors import ConfigError, OutputError
from spikecl.sweeps import register_resolvers
from spikecl.utils import interrupts

# Keys of earlier releases -> where they live now (CHANGELOG.md); an override of an old key says so.
MOVED = {
    "strategy.buffer_size": "strategy.plugins.replay.policy.capacity",                # 0.1
    "strategy.replay_per_new_class": "strategy.plugins.replay.policy.growth",        # 0.1
    "strategy.selection": "policy=growing +strategy.plugins.replay.policy.selection",  # 0.1
    "strategy.mix": "strategy.plugins.replay.mix",                                   # 0.1
    "strategy.plugins.replay.buffer_size": "strategy.plugins.replay.policy.capacity",          # 0.2
    "strategy.plugins.replay.replay_per_new_class": "strategy.plugins.replay.policy.growth",   # 0.2
    "strategy.plugins.replay.selection": "policy=growing +strategy.plugins.replay.policy.selection",  # 0.2
    "strategy.plugins.replay.capacity": "policy=class_balanced strategy.plugins.replay.policy.capacity",  # 0.2
    "scenario": "tuned",                                                             # 0.2: the config group
    "model.dt": "model.neuron.dt and model.readout.dt",                              # 0.2: neurons as parts
    "model.tau_syn": "model.neuron.tau_syn and model.readout.tau_syn",               # 0.2
    "model.tau_mem": "model.neuron.tau_mem and model.readout.tau_mem",               # 0.2
    "model.threshold": "model.neuron.threshold",                                     # 0.2
    "model.surrogate_scale": "model.neuron.surrogate_scale",                         # 0.2
}
# Flags with which Hydra only prints something: no run folder is made.
PRINT_ONLY = ("--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i", "--shell-completion", "-sc")


def config_dir() -> Path:
    """The ``conf/`` folder: inside the package in a wheel, at the repository root otherwise."""
    packaged = Path(__file__).resolve().parent / "conf"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "conf"


def check_overrides(overrides: Sequence[str]) -> None:
    """ConfigError for an override of a key that an earlier release had and this one moved."""
    for item in overrides:
        key = item.split("=", 1)[0].lstrip("+~")
        if key in MOVED:
            raise ConfigError(f"{key} is a key of an earlier spikecl; it is now {MOVED[key]} (see CHANGELOG.md)")


def check_output_folder(argv: Sequence[str]) -> None:
    """OutputError when the folder a run or sweep would write to is a file or cannot be written."""
    given = dict(a.split("=", 1) for a in argv if a.startswith(("hydra.run.dir=", "hydra.sweep.dir=")))
    multirun = "-m" in argv or "--multirun" in argv
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    folder = Path(given.get(key, "outputs")).expanduser().absolute()
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{key}={folder} is a file; choose a folder for the run's outputs")
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{key}={folder} cannot be written ({existing} is read-only); choose a writable folder, "
                          f"e.g. {key}=/tmp/spikecl")


register_resolvers()


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")
def app(cfg: DictConfig) -> float | None:
    """Run one experiment; returns the final *validation* accuracy on all tasks (what sweepers that optimise,
    such as Optuna's, should compare: never a test figure), or None without a validation part."""
    from spikecl.run import run  # torch is imported lazily so that --help and --cfg stay fast

    return run(cfg)["val_acc_all"]


def main() -> None:
    """The console script and ``python -m spikecl``: the checks of the command line, then Hydra."""
    argv = sys.argv[1:]
    try:
        check_overrides(argv)
        if not any(a in PRINT_ONLY for a in argv):
            check_output_folder(argv)
    except (ConfigError, OutputError) as exc:
        print(exc, file=sys.stderr)
        sys.exit(1)
    interrupts.install()
    app()
