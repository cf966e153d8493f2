"""Tests of multirun support: folder names, the spikecl sweeper, presets and named sweeps, launchers.

Sweeper mechanics (resume, failures, status file, report, collisions) run on a tiny Hydra app that writes a
summary.json without training, so they take seconds; the end-to-end tests run ``python -m spikecl`` on the
tiny SHD-format data set of conftest.py.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from spikecl.cli import config_dir
from spikecl.sweeps import (SWEEPER_TARGET, register_resolvers, run_name, swept_keys, sweep_name,
                            write_report_safely)  # fmt: skip
from tests.conftest import TINY

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


def subprocess_env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "HYDRA_FULL_ERROR": "0", **extra}


def only(pattern: str, folder: Path) -> Path:
    matches = list(folder.glob(pattern))
    assert len(matches) == 1, (pattern, sorted(p.name for p in folder.iterdir()) if folder.is_dir() else folder)
    return matches[0]


def statuses(sweep_dir: Path) -> dict[str, str]:
    data = json.loads((sweep_dir / "sweep_status.json").read_text())
    return {job["dir"] or job["name"]: job["status"] for job in data["jobs"]}


# ---------------------------------------------------------------- folder names


def test_sweep_name_is_deterministic_readable_and_hashed() -> None:
    a = sweep_name(["strategy=naive,latent_replay", "split=class_incremental"], swept=["strategy"])
    b = sweep_name(["split=class_incremental", "strategy=naive,latent_replay"], swept=["strategy"])
    assert a == b
    assert re.fullmatch(r"strategy=naive,latent_replay,split=class_incremental-[0-9a-f]{8}", a)
    assert sweep_name(["strategy=naive,rehearsal", "split=class_incremental"]) != a
    # execution settings do not name the sweep, seed does
    assert sweep_name(["x=1,2", "device=cuda"], ["device", "seed"]) == sweep_name(["x=1,2"], ["device", "seed"])
    assert sweep_name(["x=1,2", "seed=3"], ["seed"]) != sweep_name(["x=1,2"], ["seed"])
    assert sweep_name([]) == "default"


def test_named_sweep_name() -> None:
    assert sweep_name(["sweep=fig5_sample_incremental"], ["sweep"]) == "fig5_sample_incremental"
    narrowed = sweep_name(["sweep=fig5_sample_incremental", "split.speaker=0"], ["sweep"])
    assert re.fullmatch(r"fig5_sample_incremental-split.speaker=0-[0-9a-f]{8}", narrowed)


def test_sweep_name_sanitises_and_shortens() -> None:
    name = sweep_name(["dataset.root=/data/shd files", "model.hidden=[16,8,4]", "x=" + "v" * 300])
    assert "/" not in name and " " not in name and "[" not in name
    assert len(name) <= 140


def test_run_name_lists_swept_keys_with_seed_last() -> None:
    job = ["seed=1", "strategy.latent_depth=2", "dataset.root=/d", "split.speaker=3", "device=cpu"]
    swept = ["seed", "split.speaker", "strategy.latent_depth"]
    assert run_name(job, ["seed", "device", "dataset.root"], swept) == "split.speaker=3,strategy.latent_depth=2,seed=1"
    # nothing swept: every override but the excluded keys, seed kept
    assert run_name(job, ["seed", "device", "dataset.root"]) == "split.speaker=3,strategy.latent_depth=2,seed=1"
    assert run_name(["device=cpu"], ["device"]) == "default"
    assert run_name(["a/b=x/y"]) == "a_b=x_y"
    long = run_name(["x=" + "v" * 300])
    assert len(long) < 60 and long.startswith("x=vvv")


def test_swept_keys_from_command_line_and_params() -> None:
    overrides = ["strategy=naive,latent_replay", "split.speaker=0", "seed=range(0,3)", "model.hidden=[1,2]"]
    params = {"split.speaker": "range(0,12)", "compression": "1to2,1to4", "x": 3}
    # the command line's split.speaker=0 narrows the params' range
    assert swept_keys(overrides, params) == ["compression", "seed", "strategy"]


def test_report_failure_never_fails_the_sweep(tmp_path: Path, caplog) -> None:
    assert write_report_safely(tmp_path / "missing") is None
    assert "python -m spikecl.report" in caplog.text


def test_register_resolvers_is_idempotent() -> None:
    register_resolvers()
    register_resolvers()
    cfg = OmegaConf.create({"o": ["x=1,2", "y=3"], "n": "${spikecl_sweep_name:${o},null,${spikecl_swept_keys:${o}}}"})
    assert cfg.n.startswith("x=1,2,y=3-")


def test_composed_config_names_folders() -> None:
    register_resolvers()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("config", overrides=["strategy=naive", "seed=3", "device=cpu"], return_hydra_config=True)
    assert cfg.hydra.sweep.subdir == "strategy=naive,seed=3"
    assert re.fullmatch(r"outputs/multirun/seed=3,strategy=naive-[0-9a-f]{8}", cfg.hydra.sweep.dir)
    assert cfg.hydra.sweeper._target_ == SWEEPER_TARGET
    assert "spikecl.yaml" in ConfigStore.instance().list("hydra/sweeper")


# ---------------------------------------------------------------- presets and named sweeps

PRESETS = {
    "sample_incremental_naive": ("sample_incremental", "naive", "1to1"),
    "sample_incremental_rehearsal": ("sample_incremental", "rehearsal", "1to1"),
    "sample_incremental_latent_replay": ("sample_incremental", "latent_replay", "1to1"),
    "sample_incremental_compressed_latent_replay": ("sample_incremental", "latent_replay", "1to10"),
    "class_incremental_naive": ("class_incremental", "naive", "1to1"),
    "class_incremental_rehearsal": ("class_incremental", "rehearsal", "1to10"),
    "class_incremental_latent_replay": ("class_incremental", "latent_replay", "1to1"),
    "class_incremental_compressed_latent_replay": ("class_incremental", "latent_replay", "1to10"),
    "progressive_latent_replay": ("progressive", "latent_replay", "1to1"),
    "progressive_compressed_latent_replay": ("progressive", "latent_replay", "1to5"),
    "progressive_headline_1to2": ("progressive", "latent_replay", "1to2"),
    "digits_progressive": ("progressive", "latent_replay", "1to2"),
    "digits_progressive_adlif": ("progressive", "latent_replay", "1to2"),
}


def test_every_preset_is_tested() -> None:
    assert sorted(p.stem for p in (CONF / "experiment").glob("*.yaml")) == sorted(PRESETS)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_composes(name: str) -> None:
    text = (CONF / "experiment" / f"{name}.yaml").read_text()
    assert text.startswith("# @package _global_\n") and "Deliberately different" in text
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment={name}", "strategy.lr=0.5"], return_hydra_config=True)
    choices = cfg.hydra.runtime.choices
    assert (choices.split, choices.strategy, choices.compression) == PRESETS[name]
    assert cfg.strategy.lr == 0.5  # command-line overrides still apply


# Named grids; the named searches pick another sweeper (Optuna) and are tested in test_tuning.py.
SEARCHES = sorted(p.stem for p in (CONF / "sweep").glob("*.yaml")
                  if "override /hydra/sweeper:" in p.read_text() or re.search(r"^\s*- tune_", p.read_text(), re.M))
SWEEPS = sorted(p.stem for p in (CONF / "sweep").glob("*.yaml") if p.stem not in SEARCHES)


def test_named_sweeps_cover_the_testsuites() -> None:
    assert {"sample_incremental_latent_replay", "class_incremental_compressed_latent_replay",
            "progressive_latent_replay", "compression_study"} <= set(SWEEPS)  # fmt: skip


def test_every_named_search_is_tested() -> None:
    assert SEARCHES == ["tune_der", "tune_progressive"]  # tests/test_tuning.py


@pytest.mark.parametrize("name", SWEEPS)
def test_named_sweep_expands_to_the_documented_jobs(name: str) -> None:
    text = (CONF / "sweep" / f"{name}.yaml").read_text()
    documented = int(re.search(r"(\d+) runs", text).group(1))
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("config", overrides=[f"sweep={name}"], return_hydra_config=True)
        assert cfg.hydra.mode.name == "MULTIRUN"
        params = [f"{k}={v}" for k, v in cfg.hydra.sweeper.params.items()]
        jobs = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(params), None)[0]
        assert len(jobs) == documented
        for job in (jobs[0], jobs[-1]):  # every job's config composes
            job_cfg = compose("config", overrides=[f"sweep={name}", *job])
            for item in job:
                key, value = item.split("=", 1)
                if "." in key:
                    assert OmegaConf.select(job_cfg, key) == yaml.safe_load(value), item


# ---------------------------------------------------------------- the sweeper on a toy app

TOY_APP = '''
import json, os
from pathlib import Path
import hydra
from hydra.core.hydra_config import HydraConfig
from spikecl.fingerprint import FINGERPRINT_FILE, job_fingerprint
from spikecl.sweeps import register_resolvers

register_resolvers()


@hydra.main(version_base="1.3", config_path=".", config_name="config")
def main(cfg):
    out = Path(HydraConfig.get().runtime.output_dir)
    with open(out / "calls.txt", "a") as f:
        f.write(f"{os.getpid()}\\n")
    if str(cfg.x) == os.environ.get("TOY_FAIL_X"):
        raise RuntimeError(f"job x={cfg.x} failed on purpose")
    summary = {"status": "completed", "split": "sample_incremental", "strategy": "naive", "seed": cfg.seed,
               "speaker": cfg.x, "acc_all": 0.5 + 0.01 * cfg.x}
    (out / FINGERPRINT_FILE).write_text(json.dumps(job_fingerprint(cfg).to_dict()))  # as spikecl.run does
    (out / "summary.json").write_text(json.dumps(summary))
    return summary["acc_all"]


if __name__ == "__main__":
    main()
'''


@pytest.fixture
def toy(tmp_path: Path):
    """toy(*args, **env) -> CompletedProcess (output in .stdout) of the toy app, run in tmp_path with
    conf/config.yaml's hydra block."""
    app = tmp_path / "app"
    (app / "sweep").mkdir(parents=True)
    (app / "opt").mkdir()
    (app / "app.py").write_text(TOY_APP)
    hydra_block = yaml.safe_load((CONF / "config.yaml").read_text())["hydra"]
    config = {
        "defaults": ["_self_", {"opt": "a"}, {"sweep": None}, {"override hydra/sweeper": "spikecl"}],
        "x": 0, "seed": 0, "name": "", "device": "cpu", "hydra": hydra_block,
    }  # fmt: skip
    (app / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (app / "opt" / "a.yaml").write_text("value: 1\n")
    grid = {"hydra": {"mode": "MULTIRUN", "sweeper": {"params": {"x": "1,2", "seed": "0,1"}}}}
    (app / "sweep" / "grid.yaml").write_text("# @package _global_\n" + yaml.safe_dump(grid))

    def run(*args: str, **env: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, str(app / "app.py"), *args]
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
                              env=subprocess_env(**env), timeout=300)  # fmt: skip

    return run


def calls(run_dir: Path) -> int:
    return len((run_dir / "calls.txt").read_text().split())


def test_two_jobs_then_rerun_skips_both(toy, tmp_path: Path) -> None:
    first = toy("-m", "x=1,2", "name=fixed")
    assert first.returncode == 0, first.stdout
    sweep_dir = only("x=1,2,name=fixed-*", tmp_path / "outputs" / "multirun")
    assert statuses(sweep_dir) == {"x=1": "completed", "x=2": "completed"}
    assert (sweep_dir / "multirun.yaml").is_file()
    assert len(pd.read_csv(sweep_dir / "summary.csv")) == 2 and (sweep_dir / "report.md").is_file()

    again = toy("-m", "name=fixed", "x=1,2")  # same sweep, other order: same folder
    assert again.returncode == 0, again.stdout
    assert statuses(sweep_dir) == {"x=1": "skipped", "x=2": "skipped"}
    assert again.stdout.count("skipping: already completed with the same fingerprint") == 2
    assert calls(sweep_dir / "x=1") == 1 and calls(sweep_dir / "x=2") == 1


def test_failed_job_does_not_stop_the_sweep_and_reruns(toy, tmp_path: Path) -> None:
    failed = toy("-m", "x=1,2,3", TOY_FAIL_X="2")
    assert failed.returncode == 1
    assert "1 of 3 jobs failed" in failed.stdout
    assert "#1 x=2: RuntimeError: job x=2 failed on purpose" in failed.stdout
    sweep_dir = only("x=1,2,3-*", tmp_path / "outputs" / "multirun")
    assert statuses(sweep_dir) == {"x=1": "completed", "x=2": "failed", "x=3": "completed"}
    error = json.loads((sweep_dir / "sweep_status.json").read_text())["jobs"][1]["error"]
    assert error == "RuntimeError: job x=2 failed on purpose"
    report = (sweep_dir / "report.md").read_text()  # written although a job failed
    assert "- `x=2`: no summary.json" in report and "failed #1: `x=2`" in report
    frame = pd.read_csv(sweep_dir / "summary.csv")
    assert sorted(frame["status"]) == ["completed", "completed", "incomplete"]

    fixed = toy("-m", "x=1,2,3")  # the cause is gone: only the failed job runs again
    assert fixed.returncode == 0, fixed.stdout
    assert statuses(sweep_dir) == {"x=1": "skipped", "x=2": "completed", "x=3": "skipped"}
    assert [calls(sweep_dir / f"x={x}") for x in (1, 2, 3)] == [1, 2, 1]


def test_uncomposable_job_fails_alone(toy, tmp_path: Path) -> None:
    proc = toy("-m", "opt=a,missing")
    assert proc.returncode == 1
    assert "opt=missing (no folder): could not compose the job's config" in proc.stdout
    sweep_dir = only("opt=a,missing-*", tmp_path / "outputs" / "multirun")
    assert statuses(sweep_dir) == {"opt=a": "completed", "opt=missing": "failed"}


def test_jobs_sharing_a_folder_stop_the_sweep_before_it_runs(toy, tmp_path: Path) -> None:
    proc = toy("-m", "name=a/b,a_b")
    assert proc.returncode == 1
    assert "would share the run folder" in proc.stdout and "Traceback" not in proc.stdout
    assert not list((tmp_path / "outputs" / "multirun").glob("*/name=a_b"))


def test_named_sweep_names_seeds_last_and_narrows(toy, tmp_path: Path) -> None:
    proc = toy("sweep=grid")
    assert proc.returncode == 0, proc.stdout
    sweep_dir = tmp_path / "outputs" / "multirun" / "grid"
    assert sorted(statuses(sweep_dir)) == ["x=1,seed=0", "x=1,seed=1", "x=2,seed=0", "x=2,seed=1"]
    narrowed = toy("sweep=grid", "x=5")  # the command line wins over the params
    assert narrowed.returncode == 0, narrowed.stdout
    assert sorted(statuses(only("grid-x=5-*", tmp_path / "outputs" / "multirun"))) == ["seed=0", "seed=1"]


def test_user_sweep_dir_still_names_runs_by_swept_keys(toy, tmp_path: Path) -> None:
    proc = toy("-m", "x=1,2", "name=fixed", "hydra.sweep.dir=mine")
    assert proc.returncode == 0, proc.stdout
    assert sorted(statuses(tmp_path / "mine")) == ["x=1", "x=2"]


def test_max_batch_size_and_job_number_folders(toy, tmp_path: Path) -> None:
    proc = toy("-m", "x=1,2,3", "hydra.sweeper.max_batch_size=2", "hydra.sweep.dir=numbered",
               "hydra.sweep.subdir=job${hydra.job.num}")  # fmt: skip
    assert proc.returncode == 0, proc.stdout
    assert "Launching 2 jobs locally" in proc.stdout and "Launching 1 jobs locally" in proc.stdout
    assert statuses(tmp_path / "numbered") == {"job0": "completed", "job1": "completed", "job2": "completed"}
    again = toy("-m", "x=1,2,3", "hydra.sweeper.max_batch_size=2", "hydra.sweep.dir=numbered",
                "hydra.sweep.subdir=job${hydra.job.num}")  # fmt: skip
    # folder names depend on the job number: every job is launched again, keeps its folder, and counts as skipped
    assert "depends on the job number" in again.stdout
    assert statuses(tmp_path / "numbered") == {"job0": "skipped", "job1": "skipped", "job2": "skipped"}
    assert [calls(tmp_path / "numbered" / f"job{i}") for i in range(3)] == [2, 2, 2]


FAILING_LAUNCHER = '''
from dataclasses import dataclass
from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from hydra.core.config_store import ConfigStore


@dataclass
class LosingLauncherConf:
    _target_: str = "hydra_plugins.losing_launcher.losing.LosingLauncher"


ConfigStore.instance().store(group="hydra/launcher", name="losing", node=LosingLauncherConf)


class LosingLauncher(BasicLauncher):
    """Runs the jobs, then loses every result, as a cluster launcher whose job was killed."""

    def launch(self, job_overrides, initial_job_idx):
        super().launch(job_overrides, initial_job_idx)
        raise RuntimeError("lost contact with the cluster")
'''


def test_launcher_error_fails_only_unfinished_jobs(toy, tmp_path: Path) -> None:
    plugin = tmp_path / "app" / "hydra_plugins" / "losing_launcher"
    plugin.mkdir(parents=True)
    (plugin / "__init__.py").write_text("")
    (plugin / "losing.py").write_text(FAILING_LAUNCHER)
    proc = toy("-m", "x=1,2", "hydra/launcher=losing", TOY_FAIL_X="2")
    assert proc.returncode == 1, proc.stdout
    sweep_dir = only("x=1,2-*", tmp_path / "outputs" / "multirun")
    assert statuses(sweep_dir) == {"x=1": "completed", "x=2": "failed"}
    assert "#1 x=2: launcher error: RuntimeError: lost contact with the cluster" in proc.stdout


def test_report_callback_with_the_basic_sweeper(toy, tmp_path: Path) -> None:
    proc = toy("-m", "x=1,2", "hydra/sweeper=basic")
    assert proc.returncode == 0, proc.stdout
    sweep_dir = only("x=1,2-*", tmp_path / "outputs" / "multirun")
    assert not (sweep_dir / "sweep_status.json").exists()
    assert len(pd.read_csv(sweep_dir / "summary.csv")) == 2
    assert "Runs: 2 (2 completed, 0 incomplete)" in (sweep_dir / "report.md").read_text()


# ---------------------------------------------------------------- python -m spikecl on tiny data


@pytest.fixture
def spikecl(tiny_root: Path, tmp_path: Path):
    """spikecl(*overrides) -> CompletedProcess (output in .stdout) of python -m spikecl -m on the tiny data."""
    common = [*TINY, f"dataset.root={tiny_root}", f"cache_dir={tmp_path / 'cache'}", "split=progressive",
              "split.old_classes=[0,1]", "split.new_classes=[2,3]", "strategy=latent_replay"]  # fmt: skip

    def run(*overrides: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "spikecl", "-m", *common, *overrides]
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
                              env=subprocess_env(), timeout=600)  # fmt: skip

    return run


def test_spikecl_multirun_resumes_and_reports_failures(spikecl, tmp_path: Path) -> None:
    ok = spikecl("strategy.latent_depth=1,2")
    assert ok.returncode == 0, ok.stdout[-3000:]
    sweep_a = only("strategy.latent_depth=1,2,*", tmp_path / "outputs" / "multirun")
    assert statuses(sweep_a) == {"strategy.latent_depth=1": "completed", "strategy.latent_depth=2": "completed"}
    before = (sweep_a / "strategy.latent_depth=1" / "summary.json").stat().st_mtime_ns

    rerun = spikecl("strategy.latent_depth=1,2")
    assert rerun.returncode == 0, rerun.stdout[-3000:]
    assert rerun.stdout.count("skipping: already completed") == 2
    assert set(statuses(sweep_a).values()) == {"skipped"}
    assert (sweep_a / "strategy.latent_depth=1" / "summary.json").stat().st_mtime_ns == before

    bad = spikecl("strategy.latent_depth=1,7")  # depth 7 fails in run()'s config check, depth 1 completes
    assert bad.returncode == 1
    assert "#1 strategy.latent_depth=7: ConfigError: strategy.latent_depth=7 is not valid" in bad.stdout
    sweep_b = only("strategy.latent_depth=1,7,*", tmp_path / "outputs" / "multirun")
    assert statuses(sweep_b) == {"strategy.latent_depth=1": "completed", "strategy.latent_depth=7": "failed"}
    assert "- `strategy.latent_depth=7`: no summary.json" in (sweep_b / "report.md").read_text()

    out = tmp_path / "report"
    report = subprocess.run([sys.executable, "-m", "spikecl.report", str(sweep_a), str(sweep_b), "--out", str(out)],
                            capture_output=True, text=True, env=subprocess_env(), timeout=300)  # fmt: skip
    assert report.returncode == 0, report.stderr
    frame = pd.read_csv(out / "summary.csv")
    assert len(frame) == 4 and sorted(frame["status"]) == ["completed"] * 3 + ["incomplete"]
    for column in ("run_dir", "choice.strategy", "choice.compression", "override.strategy.latent_depth",
                   "acc_all", "buffer_bytes", "versions.torch"):  # fmt: skip
        assert column in frame.columns, column
    assert frame.loc[frame["status"] == "completed", "override.strategy.latent_depth"].tolist().count(1) == 2
    plots = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert plots == ["acc_vs_depth_progressive.png", "acc_vs_learned_classes_progressive.png",
                     "acc_vs_memory_progressive.png", "acc_vs_synops_progressive.png"]  # fmt: skip


def test_spikecl_multirun_reruns_a_job_whose_data_changed(spikecl, tmp_path: Path) -> None:
    from tests.factories import write_learnable_shd

    root = tmp_path / "data"
    write_learnable_shd(root, classes=4, speakers=4, per_speaker_class=5, seed=0)
    first = spikecl("strategy.latent_depth=1,2", f"dataset.root={root}")
    assert first.returncode == 0, first.stdout[-3000:]
    sweep = only("strategy.latent_depth=1,2,*", tmp_path / "outputs" / "multirun")
    write_learnable_shd(root, classes=4, speakers=4, per_speaker_class=5, seed=1)  # same path, new content
    again = spikecl("strategy.latent_depth=1,2", f"dataset.root={root}")
    assert again.returncode == 0, again.stdout[-3000:]
    jobs = json.loads((sweep / "sweep_status.json").read_text())["jobs"]
    assert [j["status"] for j in jobs] == ["completed", "completed"]
    assert all(j["resume"] == "rerun: the data files' content changed" for j in jobs)
    assert len(list((sweep / "strategy.latent_depth=1").glob("summary.json.stale-*"))) == 1
    third = spikecl("strategy.latent_depth=1,2", f"dataset.root={root}")  # nothing changed now: skipped
    assert [j["resume"] for j in json.loads((sweep / "sweep_status.json").read_text())["jobs"]] == [
        "skipped: same fingerprint"] * 2 and third.returncode == 0


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@pytest.mark.skipif(not _has("hydra_plugins.hydra_joblib_launcher"), reason="hydra-joblib-launcher not installed")
def test_joblib_launcher(spikecl, tmp_path: Path) -> None:
    proc = spikecl("strategy.latent_depth=1,2", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    assert proc.returncode == 0, proc.stdout[-3000:]
    sweep_dir = only("strategy.latent_depth=1,2,*", tmp_path / "outputs" / "multirun")
    assert set(statuses(sweep_dir).values()) == {"completed"}
    assert "Joblib.Parallel(n_jobs=2" in proc.stdout


@pytest.mark.slow
@pytest.mark.skipif(not _has("hydra_plugins.hydra_submitit_launcher"), reason="hydra-submitit-launcher not installed")
def test_submitit_local_launcher(spikecl, tmp_path: Path) -> None:
    proc = spikecl("strategy.latent_depth=1,2", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10")
    assert proc.returncode == 0, proc.stdout[-3000:]
    sweep_dir = only("strategy.latent_depth=1,2,*", tmp_path / "outputs" / "multirun")
    assert set(statuses(sweep_dir).values()) == {"completed"}
    assert (sweep_dir / ".submitit").is_dir()


def test_a_swept_key_with_a_plus_prefix_names_the_run_folders() -> None:
    from spikecl.sweeps import run_name, swept_keys

    params = {"++strategy.plugins.replay.capacity": "null,796", "seed": "0,1"}
    swept = swept_keys([], params)
    assert swept == ["seed", "strategy.plugins.replay.capacity"]
    names = {run_name([f"++strategy.plugins.replay.capacity={c}", f"seed={s}"], [], swept)
             for c in ("null", "796") for s in (0, 1)}
    assert len(names) == 4
