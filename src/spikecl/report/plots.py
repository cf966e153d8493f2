"""The report's figures (PNG, matplotlib without pyplot so no global backend state is touched).

- ``acc_vs_epoch_<split>.png``: accuracy on all test classes vs CL epoch, one line per buffer size, with
  the pretrained model as a dashed line (paper Fig. 5a; from metrics.csv, phase=cl, subset=all; epoch 0 is
  the evaluation before CL, task 0 in metrics.csv).
- ``acc_vs_depth_<split>.png``: final accuracy vs latent depth, one line per buffer size (Fig. 5b).
- ``progressive_acc_vs_learned_classes.png``: accuracy on all classes after each learned class, with the
  pretrained model's line (Fig. 6; last epoch of every task t >= 1 in metrics.csv; the line is task 0).
- ``acc_vs_memory_<split>.png``: final accuracy vs replay memory in bytes (log axis) across compression
  ratios and depths, as stored and under the paper's 1-bit-per-spike accounting.
- ``acc_vs_synops_<split>.png``: final accuracy vs synaptic operations per inference sample
  (``synops_inference``, log axis) and vs replay memory, one series per strategy (when the summaries
  have ``synops_inference``).

Joint training (``strategy=joint``, the upper bound) is drawn as a dash-dotted horizontal line,
``joint (upper bound)``, in every figure of its split (the mean final accuracy of its runs), never as a curve.

Each figure is skipped, with the reason, when the runs lack its data; a partial sweep never raises here.
Curves and points are means over the runs that share the settings (speakers, classes, seeds).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from spikecl.report.joint import JOINT
from spikecl.report.runs import METRICS_FILE, RunFolder
from spikecl.report.table import JOINT_LABEL, SYNOPS_METRIC, flat_scalars, human_bytes, si_number, unbounded
from spikecl.utils.atomic import write_with

PLOT_PATTERNS = ("acc_vs_epoch_*.png", "acc_vs_depth_*.png", "acc_vs_memory_*.png", "acc_vs_synops_*.png",
                 "progressive_*.png")
MAX_PANELS = 12
PROGRESSIVE = "progressive"


@dataclass
class PlotOutcome:
    """A figure that was written (``path``) or skipped (``note`` says why)."""

    title: str
    path: Path | None = None
    note: str | None = None


class NoData(Exception):
    """The runs lack what a figure needs; the message says what is missing."""


def make_plots(runs: Sequence[RunFolder], out_dir: Path) -> list[PlotOutcome]:
    """Draw every figure the completed runs support into ``out_dir``; one outcome per figure."""
    done = [run for run in runs if run.completed]
    frame = pd.DataFrame([{**flat_scalars(run.summary or {}), "_index": i} for i, run in enumerate(done)])
    splits = sorted(frame["split"].dropna().unique()) if "split" in frame.columns else []
    metrics = _MetricsCache(done)
    jobs: list[tuple[str, Callable[[], Figure]]] = []
    for split in splits:
        runs_of_split = frame[frame["split"] == split]
        if split != PROGRESSIVE:
            jobs.append((f"acc_vs_epoch_{split}", lambda r=runs_of_split, s=split: _acc_vs_epoch(r, metrics, s)))
        jobs.append((f"acc_vs_depth_{split}", lambda r=runs_of_split, s=split: _acc_vs_depth(r, s)))
        jobs.append((f"acc_vs_memory_{split}", lambda r=runs_of_split, s=split: _acc_vs_memory(r, s)))
        jobs.append((f"acc_vs_synops_{split}", lambda r=runs_of_split, s=split: _acc_vs_synops(r, s)))
    if PROGRESSIVE in splits:
        progressive = frame[frame["split"] == PROGRESSIVE]
        jobs.append(("progressive_acc_vs_learned_classes", lambda: _progressive(progressive, metrics, done)))

    outcomes = []
    if not splits:
        outcomes.append(PlotOutcome("all figures", note="no completed runs with a split in summary.json"))
    for name, draw in jobs:
        title = f"{name}.png"
        try:
            fig = draw()
        except NoData as missing:
            outcomes.append(PlotOutcome(title, note=str(missing)))
            continue
        except Exception as err:  # a figure must never cost the report: say what failed
            outcomes.append(PlotOutcome(title, note=f"failed: {type(err).__name__}: {err}"))
            continue
        path = out_dir / title
        write_with(path, lambda tmp, fig=fig: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
        outcomes.append(PlotOutcome(title, path=path))
    return outcomes


class _MetricsCache:
    """metrics.csv of completed runs, read once, limited to the CL phase on all test classes."""

    def __init__(self, runs: Sequence[RunFolder]) -> None:
        self.runs = runs
        self.cache: dict[int, pd.DataFrame | None] = {}

    def cl_all(self, index: int) -> pd.DataFrame | None:
        if index not in self.cache:
            self.cache[index] = self._read(self.runs[index].path / METRICS_FILE)
        return self.cache[index]

    @staticmethod
    def _read(path: Path) -> pd.DataFrame | None:
        try:
            data = pd.read_csv(path)
        except (OSError, ValueError):
            return None
        needed = {"phase", "task", "epoch", "subset", "accuracy"}
        if not needed <= set(data.columns):
            return None
        data = data[(data["phase"].astype(str) == "cl") & (data["subset"].astype(str) == "all")]
        data = data.assign(
            task=pd.to_numeric(data["task"], errors="coerce"),
            epoch=pd.to_numeric(data["epoch"], errors="coerce"),
            accuracy=pd.to_numeric(data["accuracy"], errors="coerce"),
        ).dropna(subset=["task", "epoch", "accuracy"])
        return data if not data.empty else None


def _acc_vs_epoch(runs: pd.DataFrame, metrics: _MetricsCache, split: str) -> Figure:
    runs, joint = _without_joint(runs)
    curves = []
    for _, run in runs.iterrows():
        data = metrics.cl_all(int(run["_index"]))
        if data is not None:
            curve = data.groupby("epoch")["accuracy"].mean()
            curves.append((run, curve))
    if not curves:
        raise NoData(f"no {METRICS_FILE} rows with phase=cl, subset=all in the {split} runs")
    panels = _panels([run for run, _ in curves], ["strategy", "compression_ratio", "codec", "latent_depth"])
    fig, axes = _figure(len(panels))
    for ax, (panel_label, members) in zip(axes, panels, strict=True):
        chosen = [curves[i] for i in members]
        baseline = [curve.loc[0] for _, curve in chosen if 0 in curve.index]
        for buffer, lines in _by(chosen, lambda item: item[0].get("buffer_size")):
            mean = pd.concat([curve for _, curve in lines], axis=1).mean(axis=1).sort_index()
            ax.plot(mean.index, 100 * mean.values, marker=".", label=f"buffer {_buffer(buffer)} ({len(lines)} runs)")
        if baseline:
            ax.axhline(100 * sum(baseline) / len(baseline), ls="--", color="gray", label="pretrained")
        _joint_line(ax, joint)
        ax.set(title=panel_label, xlabel="CL epoch", ylabel="accuracy, all classes (%)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize="small")
    fig.suptitle(f"{split}: accuracy vs epoch per buffer size (cf. paper Fig. 5a)")
    return fig


def _acc_vs_depth(runs: pd.DataFrame, split: str) -> Figure:
    if "latent_depth" not in runs.columns or "acc_all" not in runs.columns:
        raise NoData(f"no latent_depth/acc_all in the {split} summaries")
    all_runs = runs
    runs = runs[runs["latent_depth"].notna() & runs["acc_all"].notna() & ~_joint_mask(runs)]
    if runs.empty:
        raise NoData(f"no {split} run with a latent depth (latent replay)")
    joint = _joint_accuracy(all_runs)
    rows = [row for _, row in runs.iterrows()]
    panels = _panels(rows, ["strategy", "compression_ratio", "codec"])
    fig, axes = _figure(len(panels))
    for ax, (panel_label, members) in zip(axes, panels, strict=True):
        chosen = pd.DataFrame([rows[i] for i in members])
        for buffer, group in _frame_by(chosen, "buffer_size"):
            stats = group.groupby("latent_depth")["acc_all"].agg(["mean", "std", "count"]).sort_index()
            ax.errorbar(stats.index, 100 * stats["mean"], yerr=100 * stats["std"].fillna(0), marker="o",
                        capsize=3, label=f"buffer {_buffer(buffer)}")  # fmt: skip
        _joint_line(ax, joint)
        ax.set(title=panel_label, xlabel="latent depth", ylabel="final accuracy, all classes (%)")
        ax.set_xticks(sorted(chosen["latent_depth"].unique()))
        ax.legend(fontsize="small")
    fig.suptitle(f"{split}: final accuracy vs latent depth per buffer size (cf. paper Fig. 5b)")
    return fig


def _acc_vs_memory(runs: pd.DataFrame, split: str) -> Figure:
    if "buffer_bytes" not in runs.columns or "acc_all" not in runs.columns:
        raise NoData(f"no buffer_bytes/acc_all in the {split} summaries")
    joint = _joint_accuracy(runs)
    has_buffer = pd.to_numeric(runs["buffer_bytes"], errors="coerce").fillna(0) > 0
    runs = runs[has_buffer & runs["acc_all"].notna()]
    if runs.empty:
        raise NoData(f"no {split} run with a replay buffer (buffer_bytes > 0)")
    accounts = [("buffer_bytes", "replay memory as stored (bytes)")]
    if "buffer_bytes_1bit" in runs.columns and runs["buffer_bytes_1bit"].notna().any():
        accounts.append(("buffer_bytes_1bit", "replay memory, 1 bit per spike (bytes)"))
    fig, axes = _figure(len(accounts))
    keys = ["strategy", "latent_depth", "codec", "compression_ratio", "buffer_size"]
    runs = runs.assign(**{k: runs[k] if k in runs.columns else None for k in keys})
    for ax, (column, xlabel) in zip(axes, accounts, strict=True):
        for series, group in _frame_by(runs, ["strategy", "latent_depth", "codec"]):
            points = (
                group.groupby(["compression_ratio", "buffer_size"], dropna=False)
                .agg(x=(column, "mean"), y=("acc_all", "mean"), err=("acc_all", "std"))
                .reset_index()
                .dropna(subset=["x", "y"])
                .sort_values("x")
            )
            if points.empty:
                continue
            strategy, depth, codec = series
            label = f"{strategy}" + ("" if _missing(depth) else f" d={_fmt(depth)}") + f" {codec}"
            ax.errorbar(points["x"], 100 * points["y"], yerr=100 * points["err"].fillna(0), marker="o",
                        capsize=3, label=label)  # fmt: skip
            for _, point in points.iterrows():
                ax.annotate(f"1:{_fmt(point['compression_ratio'])}", (point["x"], 100 * point["y"]),
                            fontsize="x-small", textcoords="offset points", xytext=(3, 3))  # fmt: skip
        _joint_line(ax, joint)
        _log_x(ax, human_bytes)
        ax.set(xlabel=xlabel, ylabel="final accuracy, all classes (%)")
        ax.legend(fontsize="small")
    fig.suptitle(f"{split}: accuracy vs replay memory across compression ratios and depths")
    return fig


def _progressive(runs: pd.DataFrame, metrics: _MetricsCache, done: Sequence[RunFolder]) -> Figure:
    runs, joint = _without_joint(runs)
    lines: dict[str, list[pd.Series]] = {}
    pretrained = []
    for _, run in runs.iterrows():
        index = int(run["_index"])
        data = metrics.cl_all(index)
        if data is None:
            continue
        # Task 0 is the evaluation before CL (the pretrained model); task t >= 1 ends after learning class t.
        learned = data[data["task"] >= 1]
        if learned.empty:
            continue
        last = learned.sort_values("epoch").groupby("task").tail(1).set_index("task")["accuracy"]
        pretrained.extend(data.loc[data["task"] == 0, "accuracy"].tolist())
        n_old = _n_old_classes(done[index])
        last.index = last.index.astype(int) + n_old
        label = _label(run, ["strategy", "latent_depth", "buffer_size", "compression_ratio", "codec"])
        lines.setdefault(label, []).append(last)
    if not lines:
        raise NoData(f"no {METRICS_FILE} rows with phase=cl, subset=all in the progressive runs")
    fig, (ax,) = _figure(1, width=8)
    for label, series in sorted(lines.items()):
        mean = pd.concat(series, axis=1).mean(axis=1).sort_index()
        ax.plot(mean.index, 100 * mean.values, marker="o", label=f"{label} ({len(series)} runs)")
    if pretrained:
        ax.axhline(100 * sum(pretrained) / len(pretrained), ls="--", color="gray", label="pretrained")
    _joint_line(ax, joint)
    ax.set(xlabel="learned classes", ylabel="accuracy, all classes (%)",
           title="progressive: accuracy after each learned class (cf. paper Fig. 6)")  # fmt: skip
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize="x-small", loc="best")
    return fig


def _acc_vs_synops(runs: pd.DataFrame, split: str) -> Figure:
    if SYNOPS_METRIC not in runs.columns or "acc_all" not in runs.columns:
        raise NoData(f"no {SYNOPS_METRIC}/acc_all in the {split} summaries")
    joint = _joint_accuracy(runs)
    keys = ["strategy", "latent_depth", "codec", "compression_ratio", "buffer_size"]
    runs = runs.assign(**{k: runs[k] if k in runs.columns else None for k in keys})
    runs = runs.assign(**{c: pd.to_numeric(runs[c], errors="coerce") if c in runs.columns else float("nan")
                          for c in (SYNOPS_METRIC, "acc_all", "buffer_bytes")})
    measured = runs[(runs[SYNOPS_METRIC] > 0) & runs["acc_all"].notna()]
    if measured.empty:
        raise NoData(f"no {split} run with {SYNOPS_METRIC} > 0")
    panels = [(SYNOPS_METRIC, "synaptic operations per inference sample"),
              ("buffer_bytes", "replay memory as stored (bytes)")]
    fig, axes = _figure(len(panels), width=6)
    for ax, (column, xlabel) in zip(axes, panels, strict=True):
        data = measured if column == SYNOPS_METRIC else runs[(runs["buffer_bytes"] > 0) & runs["acc_all"].notna()]
        for strategy, group in _frame_by(data, "strategy"):
            points = (
                group.groupby(keys[1:], dropna=False)
                .agg(x=(column, "mean"), y=("acc_all", "mean"), err=("acc_all", "std"))
                .dropna(subset=["x", "y"])
                .sort_values("x")
            )
            if points.empty:
                continue
            joint_series = strategy == JOINT
            # One marker per setting (depth, compression, buffer), no line: settings have no order here.
            ax.errorbar(points["x"], 100 * points["y"], yerr=100 * points["err"].fillna(0), ls="none",
                        marker="*" if joint_series else "o", markersize=11 if joint_series else 6, capsize=3,
                        color="black" if joint_series else None, alpha=1.0 if joint_series else 0.8,
                        label=JOINT_LABEL if joint_series else _fmt(strategy))  # fmt: skip
        if not ax.has_data():
            ax.text(0.5, 0.5, f"no run with {column} > 0", ha="center", va="center", transform=ax.transAxes)
        else:
            _log_x(ax, si_number if column == SYNOPS_METRIC else human_bytes)
        _joint_line(ax, joint, label=None if column == SYNOPS_METRIC else JOINT_LABEL)
        ax.set(xlabel=xlabel, ylabel="final accuracy, all classes (%)")
        ax.legend(fontsize="small")
    fig.suptitle(f"{split}: accuracy vs synaptic operations and vs replay memory, per strategy")
    return fig


def _log_x(ax: Any, fmt: Callable[[float], str]) -> None:
    """A log x axis labelled in readable units (``2 M``, ``160 kB``): 1-2-5 ticks over a narrow range, decades
    over a wide one, and no minor labels (they overlap)."""
    ax.set_xscale("log")
    low, high = ax.get_xlim()
    decades = math.log10(high / low) if low > 0 and high > low else 1.0
    subs = (1.0, 2.0, 3.0, 5.0) if decades < 1.5 else (1.0, 2.0, 5.0) if decades < 3 else (1.0,)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=subs))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: fmt(x)))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _joint_mask(runs: pd.DataFrame) -> pd.Series:
    if "strategy" not in runs.columns:
        return pd.Series(False, index=runs.index)
    return runs["strategy"] == JOINT


def _without_joint(runs: pd.DataFrame) -> tuple[pd.DataFrame, float | None]:
    """The runs that are not joint training, and the joint runs' mean final accuracy (None without any)."""
    return runs[~_joint_mask(runs)], _joint_accuracy(runs)


def _joint_accuracy(runs: pd.DataFrame) -> float | None:
    """Mean final accuracy on all classes of the joint runs among ``runs`` (None without any)."""
    if "acc_all" not in runs.columns:
        return None
    values = pd.to_numeric(runs.loc[_joint_mask(runs), "acc_all"], errors="coerce").dropna()
    return float(values.mean()) if not values.empty else None


def _joint_line(ax: Any, accuracy: float | None, label: str | None = JOINT_LABEL) -> None:
    """The upper bound as a horizontal reference line."""
    if accuracy is not None:
        ax.axhline(100 * accuracy, ls="-.", color="black", lw=1.2, label=label or "_nolegend_")


def _n_old_classes(run: RunFolder) -> int:
    """Classes known before the first CL task (the x axis counts learned classes, 11..20 in the paper)."""
    old = (run.config.get("split") or {}).get("old_classes")
    return len(old) if isinstance(old, list) else 0


def _panels(rows: Sequence[Any], keys: Sequence[str]) -> list[tuple[str, list[int]]]:
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(_label(row, keys), []).append(i)
    panels = sorted(groups.items())
    if len(panels) > MAX_PANELS:
        raise NoData(f"{len(panels)} setting combinations exceed {MAX_PANELS} panels: report a narrower sweep")
    return panels


def _label(row: Any, keys: Sequence[str]) -> str:
    parts = []
    for key in keys:
        value = row.get(key)
        if _missing(value):
            continue
        parts.append({"compression_ratio": f"1:{_fmt(value)}", "latent_depth": f"d={_fmt(value)}",
                      "buffer_size": f"buffer {_buffer(value)}"}.get(key, _fmt(value)))  # fmt: skip
    return " ".join(parts) or "all runs"


def _by(items: Sequence[Any], key: Callable[[Any], Any]) -> Iterator[tuple[Any, list[Any]]]:
    groups: dict[Any, list[Any]] = {}
    for item in items:
        value = key(item)
        groups.setdefault(None if _missing(value) else value, []).append(item)
    yield from sorted(groups.items(), key=lambda kv: (kv[0] is not None, kv[0] if kv[0] is not None else 0))


def _frame_by(frame: pd.DataFrame, keys: str | list[str]) -> Iterator[tuple[Any, pd.DataFrame]]:
    yield from frame.groupby(keys, dropna=False, sort=True)


def _figure(panels: int, width: float = 5.0) -> tuple[Figure, list[Any]]:
    cols = min(3, panels)
    rows = math.ceil(panels / cols)
    fig = Figure(figsize=(width * cols, 3.8 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes[panels:]:
        ax.set_visible(False)
    return fig, axes[:panels]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _buffer(value: Any) -> str:
    return "all" if unbounded(value) else _fmt(value)


def _fmt(value: Any) -> str:
    if _missing(value):
        return "none"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
