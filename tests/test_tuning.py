"""Searches with Optuna: the best trial chosen on validation, the best settings' test run, resume, the checks.

The search's logic runs on hand-made trial folders (seconds); the end-to-end tests run ``python -m spikecl
sweep=tune_progressive`` on the embedded data set, tiny, and skip when hydra-optuna-sweeper is not installed.
"""

from __future__ import annotations

import csv
import enum
import importlib.util
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from spikecl.cli import config_dir
from spikecl.sweeps import OPTUNA_TARGET, SWEEPER_TARGET, register_resolvers
from spikecl.tuning import (BEST_DIR, best_trial, direction_problem, read_trials, search_report,
                            trials_csv)  # fmt: skip
from tests.test_sweeps import subprocess_env

ROOT = Path(__file__).resolve().parents[1]
HAS_OPTUNA = all(importlib.util.find_spec(m) is not None for m in ("optuna", "hydra_plugins.hydra_optuna_sweeper"))
needs_optuna = pytest.mark.skipif(not HAS_OPTUNA, reason="optuna / hydra-optuna-sweeper not installed")


# ---------------------------------------------------------------- the search's logic on hand-made folders


def make_trial(sweep: Path, num: int, overrides: list[str], summary: dict | None) -> Path:
    folder = sweep / ",".join(o for o in overrides if not o.startswith("dataset"))
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (folder / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"job": {"num": num}}}))
    if summary is not None:
        (folder / "summary.json").write_text(json.dumps({"status": "completed", "acc_all": 0.5, **summary}))
    return folder


@pytest.fixture
def search(tmp_path: Path) -> Path:
    """Four trial folders: #0 the best on test but not on validation, #1 the best on validation, #2 failed,
    and #3 left by an earlier, longer search (a better validation figure, but not a trial of a 3-trial search)."""
    sweep = tmp_path / "sweep"
    make_trial(sweep, 0, ["strategy.lr=0.001", "strategy.epochs=10", "dataset=shd"],
               {"val_acc_all": 0.61, "val_acc_new_mean": 0.5, "val_bwt": -0.1, "acc_all": 0.91, "fingerprint": "a"})
    make_trial(sweep, 1, ["strategy.lr=0.002", "strategy.epochs=20", "dataset=shd"],
               {"val_acc_all": 0.72, "val_acc_new_mean": 0.6, "val_bwt": -0.05, "acc_all": 0.51, "fingerprint": "b"})
    make_trial(sweep, 2, ["strategy.lr=0.004", "strategy.epochs=30", "dataset=shd"], None)
    make_trial(sweep, 3, ["strategy.lr=0.003", "strategy.epochs=40", "dataset=shd"],
               {"val_acc_all": 0.99, "acc_all": 0.99, "fingerprint": "c"})
    (sweep / "plots").mkdir()  # not a trial
    return sweep


def test_best_trial_is_chosen_on_validation_figures(search: Path) -> None:
    trials = read_trials(search, ["strategy.epochs", "strategy.lr"], n_trials=3)
    assert [t.num for t in trials] == [0, 1, 2]
    assert trials[1].params == {"strategy.epochs": "20", "strategy.lr": "0.002"}
    assert trials[1].overrides == ["strategy.lr=0.002", "strategy.epochs=20", "dataset=shd"]
    assert [t.value for t in trials] == [0.61, 0.72, None]
    best = best_trial(trials)
    assert best is not None and best.num == 1  # not #0, whose *test* accuracy is higher
    assert best_trial(trials[2:]) is None


def test_a_folder_of_an_earlier_search_is_not_a_trial(search: Path) -> None:
    # An earlier search's trial #1 proposed other settings (before a code change, say) and did better.
    old = make_trial(search, 1, ["strategy.lr=0.009", "strategy.epochs=10", "dataset=shd"], {"val_acc_all": 0.95})
    os.utime(old / ".hydra" / "overrides.yaml", ns=(1, 1))  # launched before this search's #1
    os.utime(search / "strategy.lr=0.002,strategy.epochs=20" / ".hydra" / "overrides.yaml", ns=(2, 2))
    trials = read_trials(search, ["strategy.lr"], n_trials=3)
    assert [t.params["strategy.lr"] for t in trials] == ["0.001", "0.002", "0.004"]
    assert best_trial(trials).value == 0.72


def test_equal_figures_pick_the_earliest_trial(tmp_path: Path) -> None:
    for num in (0, 1, 2):
        make_trial(tmp_path, num, [f"x={num}"], {"val_acc_all": 0.5 if num else 0.4})
    assert best_trial(read_trials(tmp_path, ["x"], 3)).num == 1


def test_report_shows_test_figures_only_of_the_best_settings_run(search: Path) -> None:
    searched = ["strategy.epochs", "strategy.lr"]
    trials = read_trials(search, searched, n_trials=3)
    best = best_trial(trials)
    text = search_report(trials, searched, best, {"acc_all": 0.4321, "bwt": -0.0123, "buffer_bytes": 950000,
                                                  "cl_seconds": 12.5, "fingerprint": "b"}, sampler="TPESampler, seed 0")
    assert "Trial #1 (`strategy.lr=0.002,strategy.epochs=20`): `strategy.epochs=20`, `strategy.lr=0.002`; " \
           "val_acc_all 0.7200." in text
    assert f"in `{BEST_DIR}/` (fingerprint b, as trial #1)" in text
    assert "| final accuracy on all test data (`acc_all`) | 0.432 |" in text
    assert "| backward transfer (`bwt`) | -0.012 |" in text and "| 950,000 bytes |" in text
    assert "0.910" not in text and "0.510" not in text  # the trials' own test figures are never shown
    test_part, trials_part = text.split("## Trials")
    assert "0.720" not in test_part.split("## Test figures")[1]  # no validation figure among the test figures
    rows = [line for line in trials_part.splitlines() if line.startswith("| #")]
    assert [row.split(" | ")[0] for row in rows] == ["| #1", "| #0", "| #2"]  # best first, failed last
    assert "failed or unfinished" in rows[2] and "3 trials, 2 completed, 1 failed" in text
    frame = list(csv.DictReader(io.StringIO(trials_csv(trials, searched))))
    assert [row["val_acc_all"] for row in frame] == ["0.61", "0.72", ""]
    assert not any(key.startswith("acc") for key in frame[0])


def test_report_of_a_failed_best_run_and_of_a_search_without_results(search: Path) -> None:
    trials = read_trials(search, ["strategy.lr"], n_trials=3)
    failed = search_report(trials, ["strategy.lr"], best_trial(trials), None, "TPESampler, seed 0", error="disk full")
    assert "The run of the best settings in `best/` failed: disk full. Rerun the same command." in failed
    empty = search_report(trials[2:], ["strategy.lr"], None, None, "TPESampler, seed 0")
    assert "No trial completed: nothing to choose." in empty


class Direction(enum.Enum):  # as the Optuna sweeper's config holds its default
    minimize = 1
    maximize = 2


def test_only_maximising_the_validation_accuracy_is_allowed() -> None:
    assert direction_problem("maximize") is None and direction_problem(Direction.maximize) is None
    for bad in ("minimize", Direction.minimize, ["maximize", "minimize"]):
        problem = direction_problem(bad)
        assert problem.startswith("hydra.sweeper.direction=") and "set hydra.sweeper.direction=maximize" in problem
        assert "\n" not in problem
    assert "direction=minimize is not valid" in direction_problem(Direction.minimize)


def test_optuna_search_syntax_names_the_run_folders() -> None:
    from spikecl.sweeps import run_name, swept_keys

    # searched keys from the command line and from hydra.sweeper.params; a fixed key is not one
    swept = swept_keys(["strategy.lr=tag(log,interval(1e-4,1e-2))", "dataset=shd", "strategy.epochs=1"],
                       {"strategy.latent_depth": "choice(1,2)", "strategy.epochs": "choice(10,20)"})
    assert swept == ["strategy.latent_depth", "strategy.lr"]
    trial = ["strategy.lr=0.0011701414134690253", "strategy.latent_depth=2", "dataset=shd", "strategy.epochs=1"]
    assert run_name(trial, [], swept) == "strategy.latent_depth=2,strategy.lr=0.0011701414134690253"


# ---------------------------------------------------------------- the named search and the sweeper choice


def composed(*overrides: str):
    register_resolvers()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=True)


@needs_optuna
@pytest.mark.parametrize("search,own", [("tune_progressive", set()),
                                        ("tune_der", {"strategy.plugins.der.alpha", "strategy.plugins.der.beta"})])
def test_named_searches_are_seeded_optuna_searches_over_existing_keys(search, own) -> None:
    cfg = composed(f"sweep={search}")
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_ == OPTUNA_TARGET and sweeper.direction == "maximize"
    assert sweeper.sampler._target_ == "optuna.samplers.TPESampler" and sweeper.sampler.seed is not None
    assert sweeper.storage is None and cfg.hydra.mode.name == "MULTIRUN"
    text = (ROOT / "conf" / "sweep" / f"{search}.yaml").read_text()
    assert f"{sweeper.n_trials} trials" in text  # the documented number
    # the replay capacity's key moves with the storage policies (issue 18): only the search's line names it
    capacity = [key for key in sweeper.params if key.startswith("strategy.plugins.replay.") and
                key.endswith(".capacity")]  # fmt: skip
    assert set(sweeper.params) == {"strategy.lr", "strategy.epochs", "strategy.latent_depth", *capacity, *own}
    assert len(capacity) == 1
    parser = OverridesParser.create()
    for key, value in sweeper.params.items():
        assert parser.parse_override(f"{key}={value}").is_sweep_override(), key
        # every searched key exists in the job's config (a renamed key fails here, not after an hour of search)
        assert OmegaConf.select(cfg, key, default="missing") != "missing", key
    assert cfg.hydra.sweep.dir == f"outputs/multirun/{search}"


@needs_optuna
def test_the_command_line_and_a_named_search_pick_the_sweeper() -> None:
    assert composed().hydra.sweeper._target_ == SWEEPER_TARGET  # the default
    assert composed("sweep=default_seeds").hydra.sweeper._target_ == SWEEPER_TARGET
    assert composed("hydra/sweeper=optuna").hydra.sweeper._target_ == OPTUNA_TARGET
    assert composed("sweep=tune_progressive").hydra.sweeper._target_ == OPTUNA_TARGET
    assert composed("experiment=digits_progressive", "sweep=tune_progressive").hydra.sweeper._target_ == OPTUNA_TARGET
    basic = composed("sweep=default_seeds", "hydra/sweeper=basic").hydra.sweeper._target_
    assert basic.endswith("BasicSweeper")


# ---------------------------------------------------------------- python -m spikecl on the embedded set

TINY_SEARCH = ["sweep=tune_progressive", "hydra.sweeper.n_trials=2", "model.hidden=[32,24,16]",
               "model.weight_scale=2.0", "pretrain.epochs=1", "pretrain.lr=5e-3", "strategy.epochs=1",
               "strategy.batch_size=16", "pretrain.batch_size=16", "split.old_classes=[0,1]",
               "split.new_classes=[2,3]", "progress=false", "plots=false", "device=cpu"]


def spikecl(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "spikecl", *overrides, f"cache_dir={tmp_path / 'cache'}"]
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
                          env=subprocess_env(), timeout=900)  # fmt: skip


def stamps(sweep: Path) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in sweep.glob("*/summary.json")}


@needs_optuna
def test_two_trial_search_reports_its_best_settings_test_figures_and_resumes(tmp_path: Path) -> None:
    first = spikecl(tmp_path, *TINY_SEARCH)
    assert first.returncode == 0, first.stdout[-3000:]
    sweeps = list((tmp_path / "outputs" / "multirun").glob("tune_progressive-*"))
    assert len(sweeps) == 1, sweeps
    sweep = sweeps[0]
    trials = sorted(p.parents[1].name for p in sweep.glob("*/.hydra/overrides.yaml") if p.parents[1].name != BEST_DIR)
    assert len(trials) == 2
    # searched keys name the folders; strategy.epochs, fixed on the command line, is not searched
    assert all(name.startswith("strategy.latent_depth=") and "strategy.epochs" not in name for name in trials)
    values = {name: json.loads((sweep / name / "summary.json").read_text())["val_acc_all"] for name in trials}
    best_name = max(trials, key=lambda name: (values[name], -trials.index(name)))
    best = json.loads((sweep / BEST_DIR / "summary.json").read_text())
    # the best run repeats the best trial's settings exactly: the same fingerprint
    assert best["fingerprint"] == json.loads((sweep / best_name / "summary.json").read_text())["fingerprint"]
    report = (sweep / "report.md").read_text()
    assert f"(`{best_name}`)" in report.split("## Best settings")[1].split("##")[0]
    assert f"| final accuracy on all test data (`acc_all`) | {best['acc_all']:.3f} |" in report
    assert not (sweep / "summary.csv").exists()  # no generic report averaging the trials' test figures
    assert (sweep / "trials.csv").is_file() and (sweep / "optimization_results.yaml").is_file()
    before = stamps(sweep)
    assert len(before) == 3

    again = spikecl(tmp_path, *TINY_SEARCH)  # the same command: nothing trains again
    assert again.returncode == 0, again.stdout[-3000:]
    assert again.stdout.count("skipping:") == 3, again.stdout[-3000:]
    assert "epoch 1/1" not in again.stdout
    assert stamps(sweep) == before
    assert (sweep / "report.md").read_text() == report


@needs_optuna
def test_a_search_that_would_minimise_the_accuracy_stops_before_any_trial(tmp_path: Path) -> None:
    proc = spikecl(tmp_path, "-m", "hydra/sweeper=optuna", "strategy.lr=tag(log,interval(1e-4,1e-2))",
                   "hydra.sweeper.storage=sqlite:///study.db")
    assert proc.returncode != 0
    # Optuna's defaults: an unseeded sampler and (here) a stored study, neither of which resumes
    assert "hydra.sweeper.sampler.seed is not set" in proc.stdout and "hydra.sweeper.storage is set" in proc.stdout
    assert "hydra.sweeper.direction=minimize is not valid" in proc.stdout and "Traceback" not in proc.stdout
    assert "Launching" not in proc.stdout
