"""Reports over run folders: ``python -m spikecl.report DIR [DIR ...] [--out OUT]``.

Reads every run folder (a folder with ``.hydra/config.yaml``) below the given folders, single runs or
multirun trees of any depth, and writes into the first folder (or ``--out``):

- ``summary.csv``: one row per run (folder, status, every ``hydra.runtime.choices`` entry as ``choice.*``,
  every command-line override as ``override.*``, every scalar of summary.json);
- ``report.md``: tables of mean ± std per setting (with the activity figures when measured), the final
  accuracy per task, the figures, and the incomplete folders;
- ``plots/*.png``: the paper's Fig. 5a, 5b and 6, accuracy vs replay memory and vs synaptic operations, on the
  test data (or the validation data: ``--data val``), one line or point per table row.

Joint training (``strategy=joint``) is the upper bound: a ``joint (upper bound)`` row in every table and a
horizontal line in every figure of its split; each run's ``gap_to_joint`` (summary.csv, report.md) comes
from the joint run of its setting (:mod:`spikecl.report.joint`).

Runs without a completed summary.json, or whose summary lacks a figure or holds one that is not a number,
are listed as incomplete or flagged and never averaged in. Below folders without any run folder, nothing is
written.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from spikecl.report.runs import RunFolder, find_run_folders, load_run, read_completed_summary

if TYPE_CHECKING:
    from spikecl.report.write import ReportResult

__all__ = ["RunFolder", "find_run_folders", "load_run", "read_completed_summary", "write_report"]


def write_report(dirs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str] | None = None,
                 data: str = "test") -> ReportResult:
    """Write summary.csv, report.md and plots/ (of the ``data``: test or val) for the runs below ``dirs``; nothing
    where there is no run folder (see :mod:`spikecl.report.write`)."""
    # pandas and matplotlib load only here, so the sweeper can check run folders without them.
    from spikecl.report import write

    return write.write_report(dirs, out, data)
