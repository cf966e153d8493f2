"""The report's figures (PNG, matplotlib without pyplot so no global backend state is touched).

Every figure shows one kind of data, the test data unless asked for the validation data (``data="val"``),
and says which in its axis labels: metrics.csv rows of the other kind are never read (its ``data`` column;
files without it hold test rows only), and final accuracies come from the summary's ``acc_all`` (test) or
``val_acc_all`` (validation).

- ``acc_vs_epoch_<split>.png``: accuracy on all classes vs CL epoch, one line per setting (paper Fig. 5a; from
  metrics.csv, phase=cl, subset=all; epoch 0 is the pretrained model, task 0 of the CL phase in metrics.csv).
- ``acc_vs_learned_classes_<split>.png``, for splits that report every task (the summary's ``per_task``; the
  progressive split): accuracy on all classes after each learned class (Fig. 6; the last epoch of every task
  t >= 1 in metrics.csv).
- ``acc_vs_depth_<split>.png``: final accuracy vs latent depth, one line per setting but the depth (Fig. 5b).
- ``acc_vs_memory_<split>.png``: final accuracy vs replay memory in bytes (log axis), one point per setting,
  as stored and under the paper's 1-bit-per-spike accounting.
- ``acc_vs_synops_<split>.png``: final accuracy vs synaptic operations per inference sample
  (``synops_inference``, log axis) and vs replay memory, one point per setting, coloured by strategy.

A line or a point is a row of the report's tables: the runs that share every setting but the replicate ones
(held-out speaker, new class, seed), grouped by :func:`spikecl.report.table.split_settings`, so that runs of
other plugins, epochs or any other override never meet in one mean. Legends give the replay buffer as stored
(``buffer_samples``), not the configured bound. Joint training (``strategy=joint``, the upper bound) is never
a curve: each setting's reference is the mean of the joint runs that its own runs were matched with (same
data set, split, seed, partition, model and pretraining budget: :mod:`spikecl.report.joint`), drawn as a
dash-dotted horizontal line; a setting whose runs do not all have one gets none, and the report says so.

Each figure is skipped, with the reason, when the runs lack its data; a partial sweep never raises here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullFormatter, NullLocator

from spikecl.report.runs import METRICS_FILE, RunFolder, finite_number
from spikecl.report.table import JOINT_LABEL, SYNOPS_METRIC, Setting, SplitSettings, human_bytes, si_number, \
    split_settings, unbounded
from spikecl.utils.atomic import write_with

# Stale figures of earlier reports are removed by these patterns (progressive_*: the name before 0.3).
PLOT_PATTERNS = ("acc_vs_epoch_*.png", "acc_vs_learned_classes_*.png", "acc_vs_depth_*.png", "acc_vs_memory_*.png",
                 "acc_vs_synops_*.png", "progressive_*.png")
DATA = {"test": "test", "val": "validation"}  # metrics.csv's data column -> what the axis labels say
FINAL = {"test": "acc_all", "val": "val_acc_all"}  # the summary's final accuracy on all classes
MAX_PANELS = 12
MAX_LINES = 8  # per panel; more settings are cut into panels by the settings that vary first (table order)
MAX_TICKS = 6  # labels on a log axis; more overlap at these figure widths


@dataclass
class PlotOutcome:
    """A figure that was written (``path``) or skipped (``note`` says why); ``notes`` qualify a written one."""

    title: str
    path: Path | None = None
    note: str | None = None
    notes: list[str] = field(default_factory=list)


class NoData(Exception):
    """The runs lack what a figure needs; the message says what is missing."""


@dataclass
class _Plotted:
    """What one figure draws from: the split's settings, their runs' metrics rows, and notes for the report."""

    split: SplitSettings
    runs: Sequence[RunFolder]
    frame: pd.DataFrame
    data: str
    notes: list[str] = field(default_factory=list)

    @property
    def methods(self) -> list[Setting]:
        """The settings drawn as lines or points: every one but joint training."""
        return [s for s in self.split.settings if not s.joint]

    @property
    def varying(self) -> list[str]:
        """The settings that differ between the drawn settings (not those only joint training has otherwise)."""
        return [k for k in self.split.varying if len({repr(_sort_value(s.values[k])) for s in self.methods}) > 1]

    @property
    def final(self) -> str:
        return FINAL[self.data]

    def ylabel(self, final: bool = False) -> str:
        return f"{'final ' if final else ''}{DATA[self.data]} accuracy, all classes (%)"

    def rows(self, setting: Setting) -> list[pd.DataFrame]:
        """The metrics.csv rows (phase=cl, subset=all, this figure's data) of each run of ``setting`` that has any."""
        found = [_cl_rows(self.runs[i].path / METRICS_FILE, self.data) for i in setting.runs.index]
        return [rows for rows in found if rows is not None]

    def finals(self, setting: Setting) -> pd.Series:
        """The setting's runs' final accuracy on all classes (NaN where a summary lacks it)."""
        if self.final not in setting.runs.columns:
            return pd.Series(np.nan, index=setting.runs.index)
        return pd.to_numeric(setting.runs[self.final], errors="coerce")

    def joint(self, setting: Setting) -> float | None:
        """Mean final accuracy of the joint runs that the setting's runs were matched with, when every run has one."""
        if "joint_run" not in setting.runs.columns:
            return None
        paths = setting.runs["joint_run"]
        if paths.isna().any() or (paths.astype(str) == "").any():
            self.notes.append(f"no joint line for {self.label(setting)}: not every run of it has a joint run of "
                              "its setting")
            return None
        by_path = {str(self.runs[i].path): i for i in self.frame.index}
        rows = [by_path.get(str(Path(p))) for p in paths]
        values = [None if i is None or self.final not in self.frame else finite_number(self.frame.at[i, self.final])
                  for i in rows]
        if any(v is None for v in values):
            self.notes.append(f"no joint line for {self.label(setting)}: a matched joint run is not in this report "
                              f"or has no {self.final}")
            return None
        return float(np.mean(values))

    def label(self, setting: Setting, leave_out: Sequence[str] = ()) -> str:
        """The setting's varying values but ``leave_out`` (those in a panel's title), and the replay buffer as
        stored (with its configured bound where that differs between settings); the strategy when nothing is
        left."""
        varying = self.varying
        parts = [_describe(k, setting.values[k]) for k in varying if k not in leave_out and k != "buffer_size"]
        if "buffer_size" not in leave_out and (_mean(setting, "buffer_samples") > 0 or "buffer_size" in varying):
            stored, bound = _stored_buffer(setting), setting.values.get("buffer_size")
            shown = "all" if unbounded(bound) else _fmt(bound)
            differs = "buffer_size" in varying and stored not in (f"buffer {shown}", f"buffer bound {shown}")
            parts.append(stored + (f" (bound {shown})" if differs else ""))
        return " ".join(p for p in parts if p) or _fmt(_value(setting, "strategy"))


def make_plots(frame: pd.DataFrame, runs: Sequence[RunFolder], out_dir: Path, data: str = "test") -> list[PlotOutcome]:
    """Draw every figure the completed runs support into ``out_dir``, one outcome per figure.

    ``frame`` is the report's :func:`~spikecl.report.table.summary_frame` of ``runs`` (one row per run, in
    their order); ``data`` is ``test`` or ``val``.
    """
    jobs = _jobs(frame, runs, data)
    outcomes = []
    if not jobs:
        outcomes.append(PlotOutcome("all figures", note="no completed runs with a split in summary.json"))
    for name, (plotted, draw) in jobs.items():
        title = f"{name}.png"
        try:
            fig = draw(plotted)
        except NoData as missing:
            outcomes.append(PlotOutcome(title, note=str(missing)))
            continue
        except Exception as err:  # a figure must never cost the report: say what failed
            outcomes.append(PlotOutcome(title, note=f"failed: {type(err).__name__}: {err}"))
            continue
        path = out_dir / title
        write_with(path, lambda tmp, fig=fig: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
        outcomes.append(PlotOutcome(title, path=path, notes=list(dict.fromkeys(plotted.notes))))
    return outcomes


def draw_figure(frame: pd.DataFrame, runs: Sequence[RunFolder], name: str,
                data: str = "test") -> tuple[Figure, list[str]]:
    """The figure ``name`` (e.g. ``acc_vs_epoch_progressive``) of :func:`make_plots`, not written, and its notes;
    KeyError if the runs have no such figure, NoData if they lack its data."""
    plotted, draw = _jobs(frame, runs, data)[name]
    return draw(plotted), plotted.notes


def _jobs(frame: pd.DataFrame, runs: Sequence[RunFolder],
          data: str) -> dict[str, tuple[_Plotted, Callable[[_Plotted], Figure]]]:
    """Every figure of the report: name -> (what it draws from, how)."""
    if data not in DATA:
        raise ValueError(f"data={data!r} is not valid; allowed: {', '.join(DATA)}")
    jobs: dict[str, tuple[_Plotted, Callable[[_Plotted], Figure]]] = {}
    for split in split_settings(frame):
        flags = _column(split, "per_task")
        per_task = bool(flags) and all(v is True or v is np.True_ for v in flags)
        name = split.split
        draws = [(f"acc_vs_learned_classes_{name}", _acc_vs_learned_classes) if per_task
                 else (f"acc_vs_epoch_{name}", _acc_vs_epoch),
                 (f"acc_vs_depth_{name}", _acc_vs_depth), (f"acc_vs_memory_{name}", _acc_vs_memory),
                 (f"acc_vs_synops_{name}", _acc_vs_synops)]
        for title, draw in draws:  # a fresh _Plotted per figure: its own notes
            jobs[title] = (_Plotted(split, runs, frame, data), draw)
    return jobs


# ------------------------------------------------------------------------------------------------- figures


def _acc_vs_epoch(p: _Plotted) -> Figure:
    curves = []
    for setting in p.methods:
        rows = p.rows(setting)
        if rows:
            means = pd.concat([r.groupby("epoch")["accuracy"].mean() for r in rows], axis=1)
            baseline = [r.loc[r["task"] == 0, "accuracy"].mean() for r in rows if (r["task"] == 0).any()]
            curves.append((setting, means.mean(axis=1).sort_index(), len(rows), baseline))
    if not curves:
        raise NoData(f"no {METRICS_FILE} rows with phase=cl, subset=all, data={p.data} in the {p.split.split} runs")
    fig = _curve_panels(p, curves, lambda setting, x: x, marker=".", xlabel="CL epoch")
    fig.suptitle(f"{p.split.split}: {DATA[p.data]} accuracy vs epoch per setting (cf. paper Fig. 5a)")
    return fig


def _acc_vs_learned_classes(p: _Plotted) -> Figure:
    lines = []
    for setting in p.methods:
        rows = p.rows(setting)
        series, pretrained = [], []
        for r in rows:
            # task 0 is the pretrained model; task t >= 1 ends after learning class t: its last epoch counts
            learned = r[r["task"] >= 1]
            if learned.empty:
                continue
            last = learned.sort_values("epoch").groupby("task").tail(1).set_index("task")["accuracy"]
            series.append(last)
            pretrained += r.loc[r["task"] == 0, "accuracy"].tolist()
        if series:
            lines.append((setting, pd.concat(series, axis=1).mean(axis=1).sort_index(), len(series), pretrained))
    if not lines:
        raise NoData(f"no {METRICS_FILE} rows with phase=cl, subset=all, data={p.data} in the {p.split.split} runs")
    fig = _curve_panels(p, lines, lambda setting, x: x.astype(int) + _old_classes(p, setting), marker="o",
                        xlabel="learned classes", wide=True)
    fig.suptitle(f"{p.split.split}: {DATA[p.data]} accuracy after each learned class (cf. paper Fig. 6)")
    return fig


def _curve_panels(p: _Plotted, curves: list, x_of: Callable, *, marker: str, xlabel: str,
                  wide: bool = False) -> Figure:
    """Panels of mean curves ``(setting, series, runs, pretrained accuracies)`` over ``x_of(setting, index)``,
    each with its setting's joint line and the pretrained model's dashed line."""
    keys = _panel_keys(p, [c[0] for c in curves], spread=("buffer_size",))
    panels = _panels([c[0] for c in curves], p, keys)
    fig, axes = _figure(len(panels), width=8 if wide and len(panels) == 1 else 5)
    for ax, (title, members) in zip(axes, panels, strict=True):
        baselines = []
        for setting, curve, count, pretrained in (curves[i] for i in members):
            line, = ax.plot(x_of(setting, curve.index), 100 * curve.values, marker=marker,
                            label=f"{p.label(setting, keys)} ({count} runs)")
            _joint_line(ax, p.joint(setting), line.get_color())
            baselines += pretrained
        if baselines:
            ax.axhline(100 * float(np.mean(baselines)), ls="--", color="gray", label="pretrained")
        ax.set(title=title, xlabel=xlabel, ylabel=p.ylabel())
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize="x-small" if wide else "small", loc="best")
    return fig


def _acc_vs_depth(p: _Plotted) -> Figure:
    with_depth = [s for s in p.methods if not _missing(_value(s, "latent_depth")) and p.finals(s).notna().any()]
    if not with_depth:
        raise NoData(f"no {p.split.split} run with a latent depth (latent replay) and a {p.final}")
    lines: dict[tuple, list[Setting]] = {}
    for setting in with_depth:  # a line: the settings that differ in their depth only
        key = tuple((k, _sort_value(v)) for k, v in setting.values.items() if k != "latent_depth")
        lines.setdefault(key, []).append(setting)
    members = [group[0] for group in lines.values()]
    keys = _panel_keys(p, members, spread=("buffer_size", "latent_depth"))
    panels = _panels(members, p, keys)
    fig, axes = _figure(len(panels))
    groups = list(lines.values())
    for ax, (title, chosen) in zip(axes, panels, strict=True):
        depths = set()
        for group in (groups[i] for i in chosen):
            group = sorted(group, key=lambda s: _value(s, "latent_depth"))
            x = [_value(s, "latent_depth") for s in group]
            mean = [100 * p.finals(s).mean() for s in group]
            std = [100 * (p.finals(s).std() if p.finals(s).count() > 1 else 0.0) for s in group]
            counts = sorted({int(p.finals(s).count()) for s in group})
            runs = "/".join(str(c) for c in counts)
            bars = ax.errorbar(x, mean, yerr=std, marker="o", capsize=3,
                               label=f"{p.label(group[0], (*keys, 'latent_depth'))} ({runs} runs per depth)")
            for setting in group:
                _joint_line(ax, p.joint(setting), bars.lines[0].get_color())
            depths |= set(x)
        ax.set(title=title, xlabel="latent depth", ylabel=p.ylabel(final=True))
        ax.set_xticks(sorted(depths))
        ax.legend(fontsize="small")
    fig.suptitle(f"{p.split.split}: final {DATA[p.data]} accuracy vs latent depth (cf. paper Fig. 5b)")
    return fig


def _acc_vs_memory(p: _Plotted) -> Figure:
    stored = [s for s in p.methods if _mean(s, "buffer_bytes") > 0 and p.finals(s).notna().any()]
    if not stored:
        raise NoData(f"no {p.split.split} run with a replay buffer (buffer_bytes > 0) and a {p.final}")
    accounts = [("buffer_bytes", "replay memory as stored (bytes)")]
    if any(_mean(s, "buffer_bytes_1bit") > 0 for s in stored):
        accounts.append(("buffer_bytes_1bit", "replay memory, 1 bit per spike (bytes)"))
    series: dict[tuple, list[Setting]] = {}
    for setting in stored:  # a series: the settings that differ in compression and buffer only
        key = tuple((k, _sort_value(v)) for k, v in setting.values.items()
                    if k not in ("compression_ratio", "buffer_size"))
        series.setdefault(key, []).append(setting)
    fig, axes = _figure(len(accounts))
    for ax, (column, xlabel) in zip(axes, accounts, strict=True):
        for group in series.values():
            points = sorted(((_mean(s, column), s) for s in group if _mean(s, column) > 0), key=lambda item: item[0])
            if not points:
                continue
            x = [value for value, _ in points]
            y = [100 * p.finals(s).mean() for _, s in points]
            err = [100 * (p.finals(s).std() if p.finals(s).count() > 1 else 0.0) for _, s in points]
            bars = ax.errorbar(x, y, yerr=err, marker="o", capsize=3,
                               label=p.label(group[0], ("compression_ratio", "buffer_size")))
            for (value, setting), height in zip(points, y):
                note = f"1:{_fmt(_value(setting, 'compression_ratio'))}"
                note += f", {_stored_buffer(setting)}" if "buffer_size" in p.varying else ""
                ax.annotate(note, (value, height), fontsize="x-small", textcoords="offset points", xytext=(3, 3))
                _joint_line(ax, p.joint(setting), bars.lines[0].get_color())
        _log_x(ax, human_bytes)
        ax.set(xlabel=xlabel, ylabel=p.ylabel(final=True))
        ax.legend(fontsize="small")
    fig.suptitle(f"{p.split.split}: final {DATA[p.data]} accuracy vs replay memory across compression ratios and "
                 "depths")
    return fig


def _acc_vs_synops(p: _Plotted) -> Figure:
    if SYNOPS_METRIC not in p.frame.columns:
        raise NoData(f"no {SYNOPS_METRIC}/{p.final} in the {p.split.split} summaries")
    everything = [s for s in p.split.settings if p.finals(s).notna().any()]
    measured = [s for s in everything if _mean(s, SYNOPS_METRIC) > 0]
    if not measured:
        raise NoData(f"no {p.split.split} run with {SYNOPS_METRIC} > 0 and a {p.final}")
    panels = [(SYNOPS_METRIC, "synaptic operations per inference sample", measured),
              ("buffer_bytes", "replay memory as stored (bytes)",
               [s for s in everything if _mean(s, "buffer_bytes") > 0])]
    fig, axes = _figure(len(panels), width=6)
    for ax, (column, xlabel, settings) in zip(axes, panels, strict=True):
        by_strategy: dict[str, list[Setting]] = {}
        for setting in settings:
            by_strategy.setdefault(str(_value(setting, "strategy")), []).append(setting)
        for strategy, group in sorted(by_strategy.items()):
            joint = all(s.joint for s in group)
            # One marker per setting (a table row), no line: settings have no order here.
            bars = ax.errorbar([_mean(s, column) for s in group], [100 * p.finals(s).mean() for s in group],
                               yerr=[100 * (p.finals(s).std() if p.finals(s).count() > 1 else 0.0) for s in group],
                               ls="none", marker="*" if joint else "o", markersize=11 if joint else 6, capsize=3,
                               color="black" if joint else None, alpha=1.0 if joint else 0.8,
                               label=JOINT_LABEL if joint else strategy)  # fmt: skip
            if column == "buffer_bytes":  # joint has no buffer: its bound of each setting as a line
                for setting in group:
                    _joint_line(ax, p.joint(setting), bars.lines[0].get_color())
        if not ax.has_data():
            ax.text(0.5, 0.5, f"no run with {column} > 0", ha="center", va="center", transform=ax.transAxes)
        else:
            _log_x(ax, si_number if column == SYNOPS_METRIC else human_bytes)
        ax.set(xlabel=xlabel, ylabel=p.ylabel(final=True))
        ax.legend(fontsize="small")
    fig.suptitle(f"{p.split.split}: final {DATA[p.data]} accuracy vs synaptic operations and vs replay memory, "
                 "one point per setting")
    return fig


# ------------------------------------------------------------------------------------------------- helpers


def _cl_rows(path: Path, data: str) -> pd.DataFrame | None:
    """The rows of one metrics.csv with phase=cl, subset=all and ``data`` (files without a data column hold
    test rows only), as numbers; None when there are none."""
    try:
        rows = pd.read_csv(path)
    except (OSError, ValueError):
        return None
    if not {"phase", "task", "epoch", "subset", "accuracy"} <= set(rows.columns):
        return None
    kind = rows["data"].astype(str) if "data" in rows.columns else pd.Series("test", index=rows.index)
    rows = rows[(rows["phase"].astype(str) == "cl") & (rows["subset"].astype(str) == "all") & (kind == data)]
    rows = rows.assign(**{c: pd.to_numeric(rows[c], errors="coerce") for c in ("task", "epoch", "accuracy")})
    rows = rows.dropna(subset=["task", "epoch", "accuracy"])
    return rows if not rows.empty else None


def _panel_keys(p: _Plotted, lines: Sequence[Setting], spread: Sequence[str]) -> tuple[str, ...]:
    """The settings that name a figure's panels: none while the ``lines`` (one setting each) fit one panel, else
    the fewest of the settings that vary between them, in the tables' order, but those the figure ``spread``
    over its lines or its x axis, that leave at most :data:`MAX_LINES` lines per panel."""
    candidates = [k for k in p.varying if k not in spread]
    keys: list[str] = []
    while candidates and max(len(m) for _, m in _panels(lines, p, keys, limit=False)) > MAX_LINES:
        keys.append(candidates.pop(0))
    return tuple(keys)


def _panels(settings: Sequence[Setting], p: _Plotted, keys: Sequence[str],
            limit: bool = True) -> list[tuple[str, list[int]]]:
    """Settings cut into panels by their values of ``keys``: (title, indices of the members)."""
    groups: dict[str, list[int]] = {}
    for i, setting in enumerate(settings):
        title = " ".join(_describe(k, setting.values[k]) for k in keys)
        groups.setdefault(title, []).append(i)
    if limit and len(groups) > MAX_PANELS:
        raise NoData(f"{len(groups)} setting combinations exceed {MAX_PANELS} panels: report a narrower sweep")
    return sorted(groups.items())


def _column(split: SplitSettings, key: str) -> list[Any]:
    return [v for s in split.settings if key in s.runs.columns for v in s.runs[key].tolist()]


def _value(setting: Setting, key: str) -> Any:
    """The setting's value of ``key``: varying (in ``values``) or common to its runs."""
    if key in setting.values:
        return setting.values[key]
    return setting.runs[key].iloc[0] if key in setting.runs.columns else None


def _mean(setting: Setting, column: str) -> float:
    """Mean of a numeric column over the setting's runs (0 when it has none)."""
    if column not in setting.runs.columns:
        return 0.0
    values = pd.to_numeric(setting.runs[column], errors="coerce").dropna()
    return float(values.mean()) if not values.empty else 0.0


def _stored_buffer(setting: Setting) -> str:
    """The replay buffer as its runs stored it (``buffer_samples``), e.g. ``buffer 760`` or ``buffer 740-760``."""
    if "buffer_samples" in setting.runs.columns:
        stored = pd.to_numeric(setting.runs["buffer_samples"], errors="coerce").dropna()
        if not stored.empty:
            low, high = int(stored.min()), int(stored.max())
            return f"buffer {low}" if low == high else f"buffer {low}-{high}"
    configured = _value(setting, "buffer_size")
    return "" if _missing(configured) else f"buffer bound {'all' if unbounded(configured) else _fmt(configured)}"


def _old_classes(p: _Plotted, setting: Setting) -> int:
    """Classes known before the first CL task (the x axis counts learned classes, 11..20 in the paper)."""
    run = p.runs[setting.runs.index[0]]
    old = (run.config.get("split") or {}).get("old_classes")
    return len(old) if isinstance(old, list) else 0


def _joint_line(ax: Any, accuracy: float | None, color: Any) -> None:
    """The upper bound of one setting as a horizontal line in the setting's colour; one legend entry per axis."""
    if accuracy is None:
        return
    for line in ax.get_lines():  # the same bound of another line of the axis: shared, so black
        if line.get_gid() == "joint" and np.isclose(line.get_ydata()[0], 100 * accuracy):
            if line.get_color() != color:
                line.set_color("black")
            return
    labelled = any(line.get_gid() == "joint" for line in ax.get_lines())
    ax.axhline(100 * accuracy, ls="-.", lw=1.2, color=color, gid="joint",
               label="_nolegend_" if labelled else f"{JOINT_LABEL}, of the same setting")


def _log_x(ax: Any, fmt: Callable[[float], str]) -> None:
    """A log x axis labelled in readable units (``2 M``, ``160 kB``), at most :data:`MAX_TICKS` labels: the
    1-2-3-5 ticks of the range thinned until they fit, then decades; round linear values over a range too
    narrow for three of those (matplotlib's own choice there labels every 0.2 MB, one over the other)."""
    ax.set_xscale("log")
    low, high = ax.get_xlim()
    ticks: list[float] = []
    for subs in ((1.0, 2.0, 3.0, 5.0), (1.0, 2.0, 5.0), (1.0, 3.0), (1.0,)):
        exponents = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
        ticks = [m * 10.0 ** e for e in exponents for m in subs if low <= m * 10.0 ** e <= high]
        if len(ticks) <= MAX_TICKS:
            break
    if len(ticks) > MAX_TICKS:  # decades over a very wide range: every k-th one
        ticks = ticks[:: math.ceil(len(ticks) / MAX_TICKS)]
    if len(ticks) < 3:  # a narrow range (one buffer, a few ratios): evenly spaced round values
        ticks = [t for t in MaxNLocator(nbins=4).tick_values(low, high) if low <= t <= high]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: fmt(x)))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(low, high)


def _figure(panels: int, width: float = 5.0) -> tuple[Figure, list[Any]]:
    cols = min(3, panels)
    rows = math.ceil(panels / cols)
    fig = Figure(figsize=(width * cols, 3.8 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes[panels:]:
        ax.set_visible(False)
    return fig, axes[:panels]


def _describe(key: str, value: Any) -> str:
    """A setting as a legend or a panel title shows it."""
    if _missing(value):
        return f"{key.removeprefix('override.')}=none"
    if key == "compression_ratio":
        return f"1:{_fmt(value)}"
    if key == "latent_depth":
        return f"d={_fmt(value)}"
    if key == "epochs":
        return f"{_fmt(value)} epochs"
    if key == "buffer_size":
        return f"buffer bound {'all' if unbounded(value) else _fmt(value)}"
    if key in ("strategy", "dataset", "codec"):
        return _fmt(value)
    if key == "plugins":
        return f"plugins {value}"
    return f"{key.removeprefix('override.')}={_fmt(value)}"


def _sort_value(value: Any) -> Any:
    return "none" if _missing(value) else value


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _fmt(value: Any) -> str:
    if _missing(value):
        return "none"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
