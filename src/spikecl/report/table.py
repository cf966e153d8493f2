"""The per-run table (summary.csv) and the grouped result tables of report.md.

Grouping rule (:func:`split_settings`, which the figures use too): runs are averaged together when they share
the experiment settings (split, strategy, plugins, compression, latent depth, buffer size, epochs, lr and every
other override that varies) and differ only in the replicate dimensions: the held-out speaker, the new class
and the seed.

Joint training (``strategy=joint``, the upper bound) is a row of its own, ``joint (upper bound)``, last in
its split's tables; every other run is compared with the joint run of its setting
(:mod:`spikecl.report.joint`) in ``gap_to_joint`` (percentage points below joint).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from spikecl.report.joint import JOINT, find_joint, joint_candidates, run_config
from spikecl.report.runs import RunFolder

CHOICE = "choice."  # column prefix of hydra.runtime.choices entries
OVERRIDE = "override."  # column prefix of command-line overrides
LEADING = ["run_dir", "status", "problem"]

# Settings of an experiment, as recorded in summary.json, that separate table rows.
GROUP_KEYS = ["dataset", "strategy", "plugins", "compression_ratio", "codec", "latent_depth", "buffer_size", "epochs",
              "lr"]
# Replicate dimensions: averaged over.
REPLICATE_KEYS = {"speaker": "speakers", "new_class": "classes", "seed": "seeds"}
# Overrides already represented by a summary column (group key or replicate), hence never extra group keys.
COVERED_OVERRIDES = {
    "split", "split.name", "split.speaker", "split.new_class", "seed", "sweep", "dataset", "dataset.name",
    "strategy", "strategy.name", "strategy.latent_depth", "strategy.plugins.replay.buffer_size", "strategy.epochs",
    "strategy.lr", "compression", "compression.ratio", "compression.codec", "plugin",
}  # fmt: skip
# Metrics shown in the tables (accuracies in percent), when present.
ACCURACY_METRICS = ["acc_all", "gap_to_joint", "acc_old", "acc_new", "forgetting", "acc_new_mean", "bwt", "fwt"]
MEMORY_METRICS = ["buffer_bytes", "buffer_bytes_1bit"]
# Activity of the final model, when the summary has it: firing rate per hidden layer, synaptic operations.
RATE_METRIC = re.compile(r"^rate_l(\d+)$")
SYNOPS_METRIC = "synops_inference"
FINAL_TASK = "final_acc.task"  # summary.csv columns: the last accuracy-matrix row, one per task
JOINT_LABEL = "joint (upper bound)"
UNBOUNDED_BUFFER = 10**9  # buffer sizes from here on hold every sample (strategy=cumulative): shown as "all"


def summary_frame(runs: Sequence[RunFolder], base: Path) -> pd.DataFrame:
    """One row per run: folder (relative to ``base`` when below it), status, choices, overrides, summary scalars."""
    rows = []
    joints = joint_candidates(run for run in runs if run.completed)
    for run in runs:
        row: dict[str, Any] = {
            "run_dir": _relative(run.path, base),
            "status": "completed" if run.completed else "incomplete",
            "problem": run.problem or "",
        }
        row.update({CHOICE + k: v for k, v in run.choices.items()})
        row.update({OVERRIDE + k: v for k, v in parse_overrides(run.overrides).items()})
        row.update(flat_scalars(run.summary or {}))
        row.update(listed_settings(run.summary or {}))
        if run.completed:
            row.update(_per_task_and_joint(run, joints))
        row["status"] = "completed" if run.completed else "incomplete"  # summary.json has its own "status"
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=LEADING)
    choices = sorted((c for c in frame.columns if c.startswith(CHOICE)), key=lambda c: ("/" in c, c))
    overrides = sorted(c for c in frame.columns if c.startswith(OVERRIDE))
    rest = [c for c in frame.columns if c not in LEADING and c not in choices and c not in overrides]
    return frame[LEADING + choices + overrides + rest]


def _per_task_and_joint(run: RunFolder, joints: list) -> dict[str, Any]:
    """The last accuracy-matrix row (``final_acc.task<i>``), the task names and the comparison with the joint
    run of the same setting (kept from summary.json when the report knows none)."""
    out: dict[str, Any] = {}
    summary = run.summary or {}
    matrix = summary.get("accuracy_matrix")
    if isinstance(matrix, list) and matrix and isinstance(matrix[-1], list):
        out.update({f"{FINAL_TASK}{i}": v for i, v in enumerate(matrix[-1])})
    if isinstance(summary.get("task_names"), list):
        out["task_names"] = "; ".join(str(n) for n in summary["task_names"])
    ref = find_joint(summary, joints, config=run_config(run) if joints else None, exclude=run.path)
    if ref is not None:
        out["joint_acc_all"], out["gap_to_joint"] = ref.acc_all, ref.gap
        out["joint_run"] = "" if ref.path is None else str(ref.path)
    return out


def listed_settings(summary: dict[str, Any]) -> dict[str, Any]:
    """The settings a summary records as lists, as scalars a table can group by: ``plugins`` (their names
    in order, comma-separated) and ``per_task`` (whether the split reports every task: the summary's flag, or
    for summaries without it, more than two task names)."""
    out: dict[str, Any] = {}
    if isinstance(summary.get("plugins"), list):
        out["plugins"] = ",".join(str(p) for p in summary["plugins"])
    if isinstance(summary.get("per_task"), bool):
        out["per_task"] = summary["per_task"]
    elif isinstance(summary.get("task_names"), list):
        out["per_task"] = len(summary["task_names"]) > 2
    return out


def parse_overrides(overrides: Sequence[str]) -> dict[str, str]:
    """``["+a.b=1", "c=x"]`` -> ``{"a.b": "1", "c": "x"}`` (``+``/``++`` dropped, ``~key`` kept as a key)."""
    parsed = {}
    for item in overrides:
        key, _, value = item.partition("=")
        parsed[key.lstrip("+")] = value
    return parsed


def flat_scalars(summary: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Scalars of a summary, nested dicts flattened as ``a.b``; lists (per-task results) are left out."""
    flat: dict[str, Any] = {}
    for key, value in summary.items():
        if isinstance(value, dict):
            flat.update(flat_scalars(value, f"{prefix}{key}."))
        elif value is None or isinstance(value, (bool, int, float, str)):
            flat[f"{prefix}{key}"] = value
    return flat


@dataclass
class Setting:
    """One row of a split's tables: the completed runs that share every setting but the replicate ones.

    ``values`` holds the settings that vary within the split (key -> the runs' common value), ``runs`` the
    rows of the summary frame, ``joint`` whether these are joint-training runs (the upper bound).
    """

    values: dict[str, Any]
    runs: pd.DataFrame
    joint: bool

    def cells(self) -> dict[str, str]:
        """The varying settings as a table row shows them."""
        return _setting_cells(self.runs, list(self.values))


@dataclass
class SplitSettings:
    """A split's completed runs cut into :class:`Setting` rows (joint last), the keys that vary between the
    rows, and a note on the settings common to all of them."""

    split: str
    varying: list[str]
    common: str
    settings: list[Setting]


def split_settings(frame: pd.DataFrame) -> list[SplitSettings]:
    """Per split (sorted), the completed runs of ``frame`` (a :func:`summary_frame`) grouped by the rule of
    this module; the tables and the figures of a report both group by this."""
    done = frame[frame["status"] == "completed"]
    if done.empty or "split" not in done.columns:
        return []
    out = []
    for split, runs in done.groupby("split", sort=True, dropna=False):
        keys = [k for k in GROUP_KEYS if k in runs.columns] + _extra_keys(runs)
        varying = [k for k in keys if runs[k].nunique(dropna=False) > 1]
        common = ", ".join(f"{k}={_fmt_value(runs[k].iloc[0])}" for k in keys if k not in varying)
        settings, joints = [], []
        for _, group in _groups(runs, varying):
            setting = Setting({k: group[k].iloc[0] for k in varying}, group, _is_joint_group(group))
            (joints if setting.joint else settings).append(setting)
        out.append(SplitSettings(str(split), varying, common, settings + joints))
    return out


def grouped_tables(frame: pd.DataFrame) -> list[tuple[str, str, pd.DataFrame]]:
    """Per split: (split name, note on settings common to all rows, table of mean ± std and counts)."""
    tables = []
    for split in split_settings(frame):
        rows = []
        for setting in split.settings:
            group = setting.runs
            row = setting.cells()
            row["runs"] = str(len(group))
            for key, label in REPLICATE_KEYS.items():
                if key in group.columns and group[key].notna().any():
                    row[label] = str(group[key].nunique())
            for metric in ACCURACY_METRICS:
                if metric in group.columns and group[metric].notna().any() and not (
                        setting.joint and metric == "gap_to_joint"):
                    label = "gap to joint (pp)" if metric == "gap_to_joint" else metric + " (%)"
                    row[label] = _mean_std(100.0 * pd.to_numeric(group[metric], errors="coerce"))
            for metric in MEMORY_METRICS:
                if metric in group.columns and group[metric].notna().any():
                    row[metric] = human_bytes(pd.to_numeric(group[metric], errors="coerce").mean())
            for metric in activity_metrics(group):
                values = pd.to_numeric(group[metric], errors="coerce").dropna()
                if not values.empty:
                    row[metric] = (si_number(values.mean()) if metric == SYNOPS_METRIC else f"{values.mean():.3g}")
            rows.append(row)
        table = pd.DataFrame(rows)
        runs = pd.concat([setting.runs for setting in split.settings])
        activity = [c for c in activity_metrics(runs) if c in table.columns]  # last, in layer order
        table = table[[c for c in table.columns if c not in activity] + activity]
        tables.append((split.split, split.common, table.fillna("")))
    return tables


def per_task_tables(frame: pd.DataFrame) -> list[tuple[str, str, pd.DataFrame]]:
    """Per split: (split name, note naming the tasks, table of the final accuracy on each task in percent),
    with the same rows as :func:`grouped_tables`, joint last: the per-class (per-task) gaps to joint."""
    columns = sorted((c for c in frame.columns if c.startswith(FINAL_TASK)), key=lambda c: int(c[len(FINAL_TASK):]))
    if not columns:
        return []
    tables = []
    for split in split_settings(frame):
        runs = pd.concat([setting.runs for setting in split.settings])
        used = [c for c in columns if runs[c].notna().any()]
        if not used:
            continue
        names = runs["task_names"].dropna().unique() if "task_names" in runs.columns else []
        titles = str(names[0]).split("; ") if len(names) == 1 else []
        headers = [titles[i] if i < len(titles) else f"task {i}" for i in range(len(used))]
        note = ("Tasks in learning order" + (" (their names differ between runs)" if len(names) > 1 else "")
                + "; final test accuracy on each (%), mean ± std over the runs of a row.")
        rows = []
        for setting in split.settings:
            group = setting.runs
            row = setting.cells()
            row["runs"] = str(len(group))
            cells = {h: _mean_std(100.0 * pd.to_numeric(group[c], errors="coerce")) for c, h in zip(used, headers)}
            if not any(cells.values()):  # runs without an accuracy matrix
                continue
            row.update(cells)
            rows.append(row)
        if rows:
            tables.append((split.split, note, pd.DataFrame(rows).fillna("")))
    return tables


def activity_metrics(frame: pd.DataFrame) -> list[str]:
    """The activity columns present: ``rate_l1 .. rate_lL`` in layer order, then ``synops_inference``."""
    rates = sorted((c for c in frame.columns if RATE_METRIC.match(c)), key=lambda c: int(RATE_METRIC.match(c)[1]))
    return rates + ([SYNOPS_METRIC] if SYNOPS_METRIC in frame.columns else [])


_DECIMAL_PREFIXES = (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3))


def _prefixed(n: float | None, unit: str, below: str) -> str:
    """``n`` in the largest decimal prefix it reaches (3 significant digits), else ``below.format(n)``;
    empty for None or a non-finite number."""
    if n is None or not math.isfinite(n):
        return ""
    for prefix, scale in _DECIMAL_PREFIXES:
        if abs(n) >= scale:
            return f"{n / scale:.3g} {prefix}{unit}"
    return below.format(n)


def si_number(n: float) -> str:
    """``1.23 M``-style numbers (k, M, G, T) for operation counts."""
    return _prefixed(n, "", "{:.3g}")


def _setting_cells(group: pd.DataFrame, varying: list[str]) -> dict[str, str]:
    row = {}
    for k in varying:
        value = group[k].iloc[0]
        if k == "strategy" and value == JOINT:
            row[k] = JOINT_LABEL
        elif k == "buffer_size" and unbounded(value):
            row[k] = "all"
        else:
            row[k] = _fmt_value(value)
    return row


def unbounded(buffer_size: Any) -> bool:
    """Whether a buffer size means "every sample" (strategy=cumulative)."""
    try:
        return float(buffer_size) >= UNBOUNDED_BUFFER
    except (TypeError, ValueError):
        return False


def _is_joint_group(group: pd.DataFrame) -> bool:
    return "strategy" in group.columns and (group["strategy"] == JOINT).all()


def markdown_table(table: pd.DataFrame) -> str:
    """A GitHub-flavoured markdown table of a frame of strings."""
    headers = [str(c) for c in table.columns]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for values in table.astype(str).itertuples(index=False):
        lines.append("| " + " | ".join(v.replace("|", "\\|") for v in values) + " |")
    return "\n".join(lines)


def human_bytes(n: float) -> str:
    """Decimal units as in the paper (160 kB = 160,000 bytes)."""
    return _prefixed(n, "B", "{:.0f} B")


def _extra_keys(runs: pd.DataFrame) -> list[str]:
    """Varying overrides that no summary column accounts for (e.g. model.hidden, experiment)."""
    extra = []
    for column in runs.columns:
        if column.startswith(OVERRIDE) and column[len(OVERRIDE) :] not in COVERED_OVERRIDES:
            if runs[column].nunique(dropna=False) > 1:
                extra.append(column)
    return sorted(extra)


def _groups(runs: pd.DataFrame, keys: list[str]):
    if not keys:
        return [((), runs)]
    # Sort on string forms so that mixed types (None next to ints) never break the order.
    ordered = runs.assign(**{f"__sort{i}": runs[k].map(_sort_key) for i, k in enumerate(keys)})
    ordered = ordered.sort_values([f"__sort{i}" for i in range(len(keys))], kind="stable")
    return ordered.groupby(keys, sort=False, dropna=False)


def _sort_key(value: Any) -> tuple[int, float, str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return (0, 0.0, "")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (1, float(value), "")
    return (2, 0.0, str(value))


def _mean_std(values: pd.Series) -> str:
    values = values.dropna()
    if values.empty:
        return ""
    if len(values) == 1:
        return f"{values.iloc[0]:.1f}"
    return f"{values.mean():.1f} ± {values.std(ddof=1):.1f}"


def _fmt_value(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path.resolve())
