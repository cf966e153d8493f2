"""``python -m spikecl.plot RUN_DIR [--sample N] [--out DIR]``: the spike plots of a finished run folder."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from torch import nn

from spikecl.build import Setup, build_setup
from spikecl.data import SpikeDataset
from spikecl.plot.spikes import plot_run


@dataclass
class LoadedRun:
    """What the plots need from a run folder: its config built into objects, the trained model, the data and
    what its replay buffer stored (the summary's ``stored_activity``)."""

    setup: Setup
    model: nn.Module
    data: SpikeDataset
    stored: dict[str, Any] | None


def load_run(run_dir: str | Path) -> LoadedRun:
    """Read ``config.yaml`` (the resolved config), ``model.pt`` and ``summary.json`` of a run folder and load
    its data set. The one place that knows the run folder's layout."""
    folder = Path(run_dir)
    for name in ("config.yaml", "model.pt", "summary.json"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder} is not a finished run folder: {name} is missing")
    setup = build_setup(OmegaConf.load(folder / "config.yaml"))
    data = setup.files.load(setup.cache_dir)
    model = _trained_model(setup, data, folder / "model.pt")
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    return LoadedRun(setup, model, data, summary.get("stored_activity"))


def _trained_model(setup: Setup, data: SpikeDataset, path: Path) -> nn.Module:
    """The network of the run's setup with the weights of ``path``; ValueError in one line if the file does not
    hold them."""
    try:
        model = setup.model(nb_outputs=setup.nb_outputs or data.num_classes)
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    # torch.load raises whatever its unpickler or zip reader meets (UnpicklingError, RuntimeError, EOFError,
    # ...); a foreign file can lack keys or hold other shapes: for the user, all of it is a damaged model.pt.
    except Exception as err:  # noqa: BLE001
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ValueError(f"{path} does not hold this run's trained network ({type(err).__name__}: {reason}); "
                         "the folder is damaged: remove its summary.json and run the same command again, which "
                         "writes model.pt anew") from None
    return model


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m spikecl.plot RUN_DIR [--sample N] [--out DIR]``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m spikecl.plot",
                                     description="Draw spike rasters and firing-rate histograms of a run folder.")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a finished run folder (config.yaml, model.pt)")
    parser.add_argument("--sample", type=int, default=0, help="data-set index of the sample to draw (default 0)")
    parser.add_argument("--out", metavar="DIR", help="where to write the PNGs (default: RUN_DIR/plots)")
    parser.add_argument("--rate-samples", type=int, default=256,
                        help="test-file samples the rate histograms average over (default 256)")
    args = parser.parse_args(argv)
    out = Path(args.out) if args.out else Path(args.run_dir) / "plots"
    try:
        run = load_run(args.run_dir)
        files = run.setup.files
        paths = plot_run(run.model, run.data, args.sample, out, files.max_time / files.nb_steps, run.stored,
                         args.rate_samples)
    except (FileNotFoundError, ValueError) as err:  # ConfigError is a ValueError
        print(f"error: {err}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
