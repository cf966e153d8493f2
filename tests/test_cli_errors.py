"""The command line reports spikecl's errors in one line on both streams, never with a traceback (unless
HYDRA_FULL_ERROR=1), for single runs and multiruns."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TINY

ROOT = Path(__file__).resolve().parents[1]
# Stands in for a run that diverges deep inside training: cli.main imports spikecl.run.run when it runs.
DIVERGING = """
import sys
import spikecl.run
from spikecl.cli import main
from spikecl.errors import TrainingDiverged

def run(cfg):
    raise TrainingDiverged("the loss became nan in phase 'cl', task 1, epoch 1; lower strategy.lr")

spikecl.run.run = run
sys.argv[0] = "spikecl"
main()
"""


def spikecl(
    tmp_path: Path, *args: str, full_error: bool = False, driver: str | None = None
) -> subprocess.CompletedProcess:
    """``python -m spikecl <args>`` on the tiny data set in ``tmp_path``, stdout and stderr kept apart."""
    head = ["-c", driver] if driver else ["-m", "spikecl"]
    env = {**os.environ, "HYDRA_FULL_ERROR": "1" if full_error else "0",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, *head, *args], capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=120)  # fmt: skip


@pytest.fixture
def tiny_args(tiny_root, tmp_path):
    return [*TINY, f"dataset.root={tiny_root}", f"cache_dir={tmp_path / 'cache'}", "split=class_incremental",
            "split.new_class=2"]  # fmt: skip


def assert_one_line(proc: subprocess.CompletedProcess, message: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stdout and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    assert message in proc.stderr  # Hydra's own report of the error
    logged = [line for line in proc.stdout.splitlines() if "[ERROR]" in line]
    assert logged and all(message in line for line in logged), proc.stdout  # the callback: one line per failure


def test_config_error_of_a_single_run(tiny_args, tmp_path: Path) -> None:
    proc = spikecl(tmp_path, *tiny_args, "strategy.epochs=abc", f"hydra.run.dir={tmp_path / 'run'}")
    assert_one_line(proc, "epochs='abc' is not valid")
    assert "Failed: " in proc.stdout


def test_full_traceback_on_request(tiny_args, tmp_path: Path) -> None:
    proc = spikecl(tmp_path, *tiny_args, "strategy.epochs=abc", f"hydra.run.dir={tmp_path / 'run'}", full_error=True)
    assert proc.returncode != 0 and "Traceback" in proc.stdout + proc.stderr


def test_data_error_raised_late_in_a_run(tiny_args, tmp_path: Path) -> None:
    missing = tmp_path / "no-data"
    proc = spikecl(tmp_path, *tiny_args, f"dataset.root={missing}", f"hydra.run.dir={tmp_path / 'run'}")
    assert_one_line(proc, f"not found in dataset.root {missing}")


def test_training_diverged(tiny_args, tmp_path: Path) -> None:
    proc = spikecl(tmp_path, *tiny_args, f"hydra.run.dir={tmp_path / 'run'}", driver=DIVERGING)
    assert_one_line(proc, "the loss became nan in phase 'cl'")


def test_multirun_failures(tiny_args, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    proc = spikecl(tmp_path, "-m", *tiny_args, "strategy.epochs=abc,1", f"dataset.root={tmp_path / 'no-data'}",
                   f"hydra.sweep.dir={sweep}", "hydra.sweeper.report=false")  # fmt: skip
    assert proc.returncode != 0
    assert "Traceback" not in proc.stdout and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    assert "2 of 2 jobs failed" in proc.stderr
    failed = [line for line in proc.stdout.splitlines() if "Failed: " in line]
    assert len(failed) == 2 and "epochs='abc' is not valid" in failed[0] and "not found in" in failed[1]


def test_the_last_line_names_the_return_value_the_validation_accuracy(caplog) -> None:
    import logging

    from hydra.core.utils import JobReturn, JobStatus

    from spikecl.callbacks import LogJobReturn

    with caplog.at_level(logging.INFO, logger="spikecl.callbacks"):
        LogJobReturn().on_job_end(None, JobReturn(status=JobStatus.COMPLETED, _return_value=0.72))
        LogJobReturn().on_job_end(None, JobReturn(status=JobStatus.COMPLETED, _return_value=None))
    first, second = [r.getMessage() for r in caplog.records]
    assert first == "Succeeded: returned the validation accuracy on all classes (val_acc_all, what sweepers " \
                    "optimise): 0.72"
    assert second == "Succeeded: no return value (no validation data, so no validation accuracy to optimise)"
