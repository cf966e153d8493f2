"""Forward transfer: computed from a known accuracy matrix, and shown in report.md's tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spikecl.cl.metrics import matrix_metrics
from spikecl.report import write_report
from tests.test_report import make_run

# R[i, j]: accuracy on task j after learning task i (row 0: after pretraining); b: the untrained model's.
MATRIX = np.array([[0.8, 0.1, 0.0], [0.7, 0.9, 0.2], [0.6, 0.8, 0.9]])
INITIAL = np.array([0.1, 0.05, 0.1])


def test_forward_transfer_of_a_known_matrix():
    # task 1 was at 0.1 just before it was learned (b = 0.05), task 2 at 0.2 (b = 0.1): mean of 0.05 and 0.1
    assert matrix_metrics(MATRIX, INITIAL)["fwt"] == pytest.approx(0.075)
    assert "fwt" not in matrix_metrics(MATRIX)  # no initial model measured: no FWT


def test_report_tables_have_an_fwt_column(tmp_path: Path):
    fwt = matrix_metrics(MATRIX, INITIAL)["fwt"]
    for seed, shift in ((0, 0.0), (1, 0.02)):
        make_run(tmp_path / f"seed={seed}", split="progressive", speaker=None, seed=seed, tasks=2,
                 extra={"fwt": fwt + shift, "initial_accuracy": INITIAL.tolist()})
    report = write_report([tmp_path]).report_md.read_text()
    header = next(line for line in report.splitlines() if "fwt (%)" in line)
    row = report.splitlines()[report.splitlines().index(header) + 2]
    column = [c.strip() for c in header.split("|")].index("fwt (%)")
    assert [c.strip() for c in row.split("|")][column] == "8.5 ± 1.4"  # 7.5 and 9.5 percent
