"""Spike plots of a trained network: rasters of one sample's input and hidden layers, replayed activity before
and after time compression, and per-layer firing-rate histograms (PNG, matplotlib without pyplot).

Every run draws them into its folder's ``plots/`` at the end (``plots: true``); ``python -m spikecl.plot
RUN_DIR [--sample N] [--out DIR]`` draws them for a finished run folder (:mod:`spikecl.plot.__main__`); the
library functions take a model and data directly:

- ``input.png``: the sample's binned input spikes (darker: more spikes in the bin);
- ``layer<k>.png``: the spikes of hidden layer k for that sample;
- ``replay_d<d>_<codec>_1to<r>.png``: the activity a latent-replay buffer stores at depth d, next to what
  it replays after compression 1:r with the codec (spikes for d >= 1, the input current for d = 0);
- ``rates.png``: per layer, the histogram of the neurons' firing rates over a set of samples.

Every raster has time in seconds of recording on the bottom axis, time steps on the top axis, and the unit
(input channel or neuron) index on the vertical axis.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from spikecl.cl.compression import decode, encode
from spikecl.data import BinnedSpikes, SpikeDataset
from spikecl.measure import count_dataset
from spikecl.models import RSNN
from spikecl.utils.atomic import write_with

DPI = 120


def _save(fig: Figure, path: Path) -> Path:
    write_with(path, lambda p: fig.savefig(p, format="png", dpi=DPI))
    return path


def _time_axes(ax: Axes, steps: int, step_s: float) -> None:
    """Seconds on the bottom axis, time steps on a secondary top axis."""
    ax.set_xlim(0, steps * step_s)
    ax.set_xlabel("time (s)")
    top = ax.secondary_xaxis("top", functions=(lambda s: s / step_s, lambda t: t * step_s))
    top.set_xlabel("time step")


def draw_raster(ax: Axes, activity: np.ndarray, step_s: float, unit_label: str) -> None:
    """Events of ``activity`` [T, H] as ticks at (step start time, unit); counts above 1 are drawn darker."""
    steps, width = activity.shape
    t, u = np.nonzero(activity)
    values = activity[t, u].astype(np.float64)
    # at most 2 shades of gray per extra count, so one spike is still clearly visible
    shade = np.clip(0.55 - 0.2 * (values - 1), 0.0, 0.55)
    ax.scatter((t + 0.5) * step_s, u, c=np.repeat(shade[:, None], 3, axis=1), marker="|",
               s=max(4.0, 2400.0 / max(width, 1)), linewidths=0.8)
    ax.set_ylim(-0.5, width - 0.5)
    ax.set_ylabel(unit_label)
    _time_axes(ax, steps, step_s)


def draw_heatmap(ax: Axes, activity: np.ndarray, step_s: float, unit_label: str, colour_label: str) -> None:
    """A float [T, H] activity (input current) as a diverging colour map centred on 0."""
    steps, width = activity.shape
    limit = float(np.abs(activity).max()) or 1.0
    image = ax.imshow(activity.T, aspect="auto", origin="lower", cmap="RdBu_r", vmin=-limit, vmax=limit,
                      extent=(0, steps * step_s, -0.5, width - 0.5), interpolation="nearest")
    ax.figure.colorbar(image, ax=ax, label=colour_label, pad=0.02)
    ax.set_ylabel(unit_label)
    _time_axes(ax, steps, step_s)


def raster_figure(activity: np.ndarray, step_s: float, title: str, unit_label: str) -> Figure:
    """One raster of ``activity`` [T, H] with a title."""
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.add_subplot()
    draw_raster(ax, activity, step_s, unit_label)
    ax.set_title(title)
    return fig


@torch.inference_mode()
def sample_activity(model: RSNN, x: torch.Tensor) -> list[np.ndarray]:
    """Spikes [T, H_k] of every hidden layer for one dense sample ``x`` [T, U]."""
    model.eval()
    return [s[0].cpu().numpy() for s in model.hidden_spikes(x[None])]


def _label(data: SpikeDataset, index: int) -> str:
    label = int(data.labels[index])
    name = data.class_names[label] if label < len(data.class_names) else str(label)
    return f"sample {index} (class {name!r}, speaker {int(data.speakers[index])})"


def plot_sample(model: RSNN, data: SpikeDataset, index: int, out_dir: str | Path, step_s: float) -> list[Path]:
    """``input.png`` and ``layer<k>.png`` for sample ``index`` of ``data``; returns the written paths."""
    out = Path(out_dir)
    x = data.spikes.dense([index], device=model.device)[0]
    what = _label(data, index)
    fig = raster_figure(x.cpu().numpy(), step_s, f"Input spikes of {what}: {int(x.sum())} spikes",
                        "input channel")
    paths = [_save(fig, out / "input.png")]
    for k, spikes in enumerate(sample_activity(model, x), start=1):
        rate = spikes.mean() / step_s
        fig = raster_figure(spikes, step_s, f"Hidden layer {k} spikes of {what}\n"
                            f"{int(spikes.sum())} spikes, {rate:.1f} spikes/s per neuron", "neuron")
        paths.append(_save(fig, out / f"layer{k}.png"))
    return paths


@torch.inference_mode()
def plot_replay(model: RSNN, data: SpikeDataset, index: int, depth: int, ratio: int, codec: str,
                out_dir: str | Path, step_s: float) -> Path:
    """The activity of sample ``index`` at ``depth`` as stored, next to its replay after compression 1:``ratio``
    with ``codec`` (:mod:`spikecl.cl.compression`), in one figure of two panels."""
    model.eval()
    x = data.spikes.dense([index], device=model.device)
    stored = model.latent(x, depth)
    replayed = decode(encode(stored, ratio, codec), ratio, codec, stored.dtype)
    fig = Figure(figsize=(13, 4.8), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    where = "input current into layer 1" if depth == 0 else f"hidden layer {depth} spikes"
    for ax, act, name in ((axes[0], stored, "before compression"), (axes[1], replayed, f"replayed after 1:{ratio}")):
        act = act[0].cpu().numpy()
        if depth == 0:
            draw_heatmap(ax, act, step_s, "neuron of layer 1", "current")
            ax.set_title(f"{name}: total current {act.sum():.1f}")
        else:
            draw_raster(ax, act, step_s, f"neuron of layer {depth}")
            ax.set_title(f"{name}: {int(act.sum())} spikes")
    axes[1].set_ylabel("")
    fig.suptitle(f"Replay of {where}, {_label(data, index)}, codec {codec}")
    return _save(fig, Path(out_dir) / f"replay_d{depth}_{codec}_1to{ratio}.png")


def plot_rate_histograms(model: RSNN, spikes: BinnedSpikes, indices: Sequence[int] | np.ndarray,
                         out_dir: str | Path, step_s: float, bins: int = 30) -> Path:
    """``rates.png``: per hidden layer, how many neurons fire at which mean rate (spikes/s) over ``indices``."""
    counts = count_dataset(model, spikes, indices)
    fig = Figure(figsize=(7, 2.3 * len(counts.layers) + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(counts.layers), 1))
    for ax, k, per_neuron in zip(axes, counts.layers, counts.spikes):
        rates = per_neuron.cpu().numpy() / (counts.samples * counts.steps * step_s)
        silent = int((rates == 0).sum())
        ax.hist(rates, bins=bins, range=(0, max(float(rates.max()), 1e-9)), color="0.35")
        ax.set_title(f"layer {k}: {len(rates)} neurons, mean {rates.mean():.1f} spikes/s, {silent} silent",
                     fontsize=10)
        ax.set_ylabel("neurons")
    axes[-1].set_xlabel("firing rate (spikes/s, mean over samples and time)")
    fig.suptitle(f"Firing rates of the hidden layers over {counts.samples} samples")
    return _save(fig, Path(out_dir) / "rates.png")


def plot_run(model: RSNN, data: SpikeDataset, sample: int, out_dir: str | Path, step_s: float,
             stored: Mapping[str, Any] | None = None, rate_samples: int = 256) -> list[Path]:
    """Every figure for one run: the sample's rasters, its replay as a latent replay buffer stores it
    (``stored``: the ``depth``, ``ratio`` and ``codec`` of the run's summary ``stored_activity``; None: no
    latent buffer), and rate histograms over up to ``rate_samples`` samples of the test file. ``step_s`` is
    one time step in seconds."""
    if not 0 <= sample < len(data):
        raise ValueError(f"--sample {sample} is outside 0..{len(data) - 1}")
    paths = plot_sample(model, data, sample, out_dir, step_s)
    if stored:
        paths.append(plot_replay(model, data, sample, stored["depth"], stored["ratio"], stored["codec"], out_dir,
                                 step_s))
    pool = np.flatnonzero(data.from_test_file)
    pool = pool if len(pool) else np.arange(len(data))
    paths.append(plot_rate_histograms(model, data.spikes, pool[:rate_samples], out_dir, step_s))
    return paths
