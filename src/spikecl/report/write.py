"""Assemble the report of a set of run folders: summary.csv, report.md and the figures under plots/."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from spikecl.report.plots import PLOT_PATTERNS, PlotOutcome, make_plots
from spikecl.report.runs import RunFolder, find_run_folders, load_run
from spikecl.report.table import JOINT_LABEL, grouped_tables, markdown_table, per_task_tables, summary_frame
from spikecl.utils.atomic import write_text, write_with

log = logging.getLogger(__name__)

SUMMARY_CSV = "summary.csv"
REPORT_MD = "report.md"
PLOTS_DIR = "plots"
SWEEP_STATUS = "sweep_status.json"


@dataclass
class ReportResult:
    """What :func:`write_report` wrote and what it found; with no run folder found, nothing is written and the
    paths are None."""

    out: Path
    summary_csv: Path | None
    report_md: Path | None
    plots: list[Path] = field(default_factory=list)
    completed: int = 0
    incomplete: list[Path] = field(default_factory=list)


def write_report(dirs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str] | None = None,
                 data: str = "test") -> ReportResult:
    """Report on every run folder below ``dirs``; files go to ``out`` (default: the first dir). The figures
    show ``data`` (``test`` or ``val``).

    Raises FileNotFoundError when a dir is missing. Below dirs without any run folder, nothing is written.
    """
    if not dirs:
        raise ValueError("write_report needs at least one folder")
    roots = [Path(d) for d in dirs]
    out_dir = Path(out) if out is not None else roots[0]
    runs = [load_run(path) for path in find_run_folders(roots)]
    if not runs:
        return ReportResult(out=out_dir, summary_csv=None, report_md=None)
    frame = summary_frame(runs, out_dir)

    # Nullable dtypes keep integer columns integral next to the empty cells of incomplete runs.
    csv_frame = frame.convert_dtypes()
    summary_csv = write_with(out_dir / SUMMARY_CSV, lambda tmp: csv_frame.to_csv(tmp, index=False))
    plots_dir = out_dir / PLOTS_DIR
    outcomes = make_plots(frame, runs, plots_dir, data)
    _remove_stale_plots(plots_dir, {o.path for o in outcomes if o.path is not None})
    text = _markdown(roots, out_dir, runs, frame, outcomes)
    report_md = write_text(out_dir / REPORT_MD, text)
    return ReportResult(
        out=out_dir,
        summary_csv=summary_csv,
        report_md=report_md,
        plots=[o.path for o in outcomes if o.path is not None],
        completed=sum(run.completed for run in runs),
        incomplete=[run.path for run in runs if not run.completed],
    )


def _markdown(
    roots: Sequence[Path], out_dir: Path, runs: Sequence[RunFolder], frame: pd.DataFrame, plots: list[PlotOutcome]
) -> str:
    done = sum(run.completed for run in runs)
    lines = [
        "# spikecl report",
        "",
        "Sources: " + ", ".join(f"`{root}`" for root in roots),
        "",
        f"Runs: {len(runs)} ({done} completed, {len(runs) - done} incomplete). "
        f"One row per run in [`{SUMMARY_CSV}`]({SUMMARY_CSV}).",
        "",
    ]
    lines += _sweep_status_section(roots)
    lines += ["## Results", ""]
    tables = grouped_tables(frame)
    if tables:
        lines += [
            "Completed runs only. Accuracies in percent (on the test set of the classes named), mean ± sample "
            "std over the runs of a row; `runs` counts them and `speakers`, `classes`, `seeds` count the "
            "distinct held-out speakers, new classes and seeds among them. Memory: mean replay buffer size, "
            "as stored and at 1 bit per spike. Activity, when measured: `rate_l<k>`, spikes per neuron per step "
            f"of hidden layer k, and `synops_inference`, synaptic operations per test sample. `{JOINT_LABEL}` "
            "(`strategy=joint`: one model trained on every task's train data) is the upper bound; `gap to "
            "joint (pp)` is its accuracy on all classes minus the run's, from the joint run of the same data "
            "set, split, seed and partition, when there is one.",
            "",
        ]
    else:
        lines += ["No completed runs." if not done else "No tables: the summaries name no split.", ""]
    for split, common, table in tables:
        lines += [f"### {split}", ""]
        if common:
            lines += [f"Common to all rows: {common}", ""]
        lines += [markdown_table(table), ""]
    per_task = per_task_tables(frame)
    if per_task:
        lines += ["## Final accuracy per task", ""]
    for split, note, table in per_task:
        lines += [f"### {split}", "", note, "", markdown_table(table), ""]

    lines += ["## Figures", ""]
    for outcome in plots:
        if outcome.path is not None:
            rel = outcome.path.relative_to(out_dir).as_posix()
            lines += [f"![{outcome.title}]({rel})", ""]
            lines += [f"- {note}" for note in outcome.notes] + ([""] if outcome.notes else [])
    skipped = [o for o in plots if o.path is None]
    if skipped:
        lines += ["Skipped figures:", ""] + [f"- `{o.title}`: {o.note}" for o in skipped] + [""]

    lines += ["## Incomplete or flagged runs (not averaged in)", ""]
    incomplete = [run for run in runs if not run.completed]
    if incomplete:
        rows = frame[frame["status"] != "completed"]
        lines += [f"- `{row.run_dir}`: {row.problem}" for row in rows.itertuples(index=False)]
    else:
        lines += ["None."]
    return "\n".join(lines) + "\n"


def _sweep_status_section(roots: Sequence[Path]) -> list[str]:
    """Counts and failed jobs from the sweeper's sweep_status.json, when a root is a sweep folder."""
    lines: list[str] = []
    for root in roots:
        path = root / SWEEP_STATUS
        if not path.is_file():
            continue
        try:
            status = json.loads(path.read_text(encoding="utf-8"))
            jobs = status["jobs"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            lines += [f"- `{path}`: unreadable ({err})"]
            continue
        counts = status.get("counts", {})
        lines += [f"- `{root}`: " + ", ".join(f"{n} {name}" for name, n in counts.items())]
        for job in jobs:
            if job.get("status") == "failed":
                where = f"`{job['dir']}`" if job.get("dir") else f"`{job.get('name', '')}` (no folder)"
                error = str(job.get("error") or "unknown error").strip().splitlines() or ["unknown error"]
                lines += [f"  - failed #{job.get('num')}: {where}: {error[0]}"]
    return ["## Sweep status", ""] + lines + [""] if lines else []


def _remove_stale_plots(plots_dir: Path, keep: set[Path]) -> None:
    """Figures of an earlier report that this one did not draw would misrepresent the runs: delete them."""
    if not plots_dir.is_dir():
        return
    for pattern in PLOT_PATTERNS:
        for path in plots_dir.glob(pattern):
            if path not in keep:
                log.info("removing stale figure %s", path)
                path.unlink(missing_ok=True)
