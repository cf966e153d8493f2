"""Outputs that hold under faults (issue 17): hostile checkpoints, two runs on one folder, resumes after the last
task, logger files across resumes, non-finite settings and weights, full disks, interrupts, and run folders
made from Python that are those of the command line."""

from __future__ import annotations

import csv
import errno
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from spikecl.cl import Plugin, Strategy
from spikecl.errors import ConfigError, Interrupted, OutputError, TrainingDiverged
from spikecl.experiment import Experiment
from spikecl.run import run
from spikecl.utils.locks import LockTimeout
from spikecl.utils import interrupts
from tests.conftest import TINY, TINY_REPLAY


class Planted:
    """A pickle that runs a command when it is unpickled (what a planted checkpoint would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_planted_checkpoint_never_runs_code(compose_cfg, tmp_path):
    folder, marker = tmp_path / "run", tmp_path / "pwned"
    first = run(compose_cfg(), folder)
    (folder / "summary.json").unlink()
    (folder / "checkpoints" / "task2.pt").write_bytes(pickle.dumps({"fingerprint": Planted(marker)}))
    again = run(compose_cfg(), folder)
    assert not marker.exists()
    assert again["acc_all"] == first["acc_all"]  # started over: the planted file was not trusted
    assert "is not usable" in (folder / "spikecl.log").read_text()


def test_a_second_run_on_a_held_folder_stops_naming_the_holder(compose_cfg, tmp_path):
    folder = tmp_path / "run"
    with Experiment(compose_cfg("seed=0"), folder):
        with pytest.raises(LockTimeout, match=r"the run folder .* is in use by another run.*held by pid \d+ on host"):
            Experiment(compose_cfg("seed=1"), folder)
    Experiment(compose_cfg("seed=1"), folder).close()  # free again once the first is done


def test_the_skip_decision_reads_the_summary_s_own_fingerprint(compose_cfg, tmp_path):
    # seed 1 wrote fingerprint.json while seed 0 was still running and then wrote its summary (0.2: a rerun
    # of seed 1 was skipped and returned seed 0's figures)
    folder = tmp_path / "run"
    seed1 = run(compose_cfg("seed=1"), tmp_path / "reference")
    seed0 = run(compose_cfg("seed=0"), folder)
    (folder / "fingerprint.json").write_text((tmp_path / "reference" / "fingerprint.json").read_text())
    again = run(compose_cfg("seed=1"), folder)
    assert again["seed"] == 1 and again["fingerprint"] == seed1["fingerprint"] != seed0["fingerprint"]
    assert again["accuracy_matrix"] == seed1["accuracy_matrix"]


def test_a_resume_after_the_last_task_keeps_every_plugin_figure(compose_cfg, tmp_path):
    folder = tmp_path / "run"
    first = run(compose_cfg(), folder)
    (folder / "summary.json").unlink()
    again = run(compose_cfg(), folder)
    assert again["compression_ratio"] == first["compression_ratio"] and again["codec"] == first["codec"]
    for key in ("buffer_samples", "buffer_bytes", "replay_activity", "accuracy_matrix"):
        assert again[key] == first[key] and first[key] not in (0, None, []), key
    assert again["fwt"] == first["fwt"] and again["initial_accuracy"] == first["initial_accuracy"]


def test_an_interrupt_says_how_to_resume_and_the_logger_files_survive_it(compose_cfg, tmp_path, monkeypatch):
    whole = tmp_path / "whole"
    run(compose_cfg(), whole)
    folder = tmp_path / "run"
    learn = Strategy.learn

    def interrupted(self, ctx, task):  # Ctrl-C while task 2 trains
        if task == 2:
            raise KeyboardInterrupt
        learn(self, ctx, task)

    monkeypatch.setattr(Strategy, "learn", interrupted)
    cache = tmp_path / "own-cache"  # pretrains as the whole run did, so its scalars hold the same rows
    with pytest.raises(Interrupted, match=r"^interrupted; rerun the same command to resume after task 1 \(what was "
                                          r"finished is kept\)$"):
        run(compose_cfg(cache=cache), folder)
    monkeypatch.setattr(Strategy, "learn", learn)
    run(compose_cfg(cache=cache), folder)
    # the resumed run's logger output is the uninterrupted run's, row for row (0.2: scalars.csv truncated)
    assert (folder / "scalars.csv").read_text() == (whole / "scalars.csv").read_text()
    rows = list(csv.DictReader((folder / "metrics.csv").open()))
    assert [r["accuracy"] for r in rows] == [r["accuracy"] for r in csv.DictReader((whole / "metrics.csv").open())]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the dropped one, as meant
def test_a_ctrl_c_that_a_finaliser_swallowed_still_stops_the_run_with_the_resume_line(compose_cfg, tmp_path,
                                                                                       monkeypatch):
    # SIGINT inside a finaliser (here: a generator closed by the garbage collector) is printed as "Exception
    # ignored" and dropped by Python; the command line's handler records it and the loop acts on it
    import gc
    import signal

    previous = signal.getsignal(signal.SIGINT)
    interrupts.install()
    learn = Strategy.learn

    def pressed_in_a_finaliser(self, ctx, task):
        if task == 2:
            def closing():
                try:
                    yield
                finally:
                    signal.raise_signal(signal.SIGINT)
            g = closing()
            next(g)
            del g  # closed here: its KeyboardInterrupt is printed and dropped
            gc.collect()
        learn(self, ctx, task)

    monkeypatch.setattr(Strategy, "learn", pressed_in_a_finaliser)
    try:
        with pytest.raises(Interrupted, match=r"^interrupted; rerun the same command to resume after task 1 "):
            run(compose_cfg(), tmp_path / "run")
    finally:
        signal.signal(signal.SIGINT, previous)
        interrupts.clear()
    assert not (tmp_path / "run" / "summary.json").exists()


def test_a_rerun_with_another_config_sets_the_logger_files_aside(compose_cfg, tmp_path):
    folder = tmp_path / "run"
    run(compose_cfg("seed=0"), folder)
    run(compose_cfg("seed=2"), folder)
    for name in ("scalars.csv", "hparams.json", "accuracy_matrix.csv", "summary.json"):
        assert len(list(folder.glob(f"{name}.stale-*"))) == 1, name


@pytest.mark.parametrize("key", ["strategy.lr", "pretrain.lr", "strategy.plugins.replay.replay_ratio"])
@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
def test_non_finite_settings_are_config_errors(compose_cfg, key, value):
    from spikecl.build import build_setup

    with pytest.raises(ConfigError, match=f"{key}={value}.* is not valid; it must be a finite number"):
        build_setup(compose_cfg(f"{key}={value}"))


class Poison(Plugin):
    """An infinite gradient on the readout in the last step of an epoch: the optimiser's step makes its weights
    NaN while every loss of the epoch stays finite."""

    def before_epoch(self, ctx, task, epoch):
        self.steps = 0

    def after_backward(self, ctx, task):
        self.steps += 1
        if self.steps == len(ctx.batches):
            ctx.trainable[-1].grad.fill_(float("inf"))


def test_non_finite_weights_after_a_step_are_divergence(compose_cfg, tmp_path, monkeypatch):
    original = Strategy.__init__

    def poisoned(self, **kwargs):
        if kwargs.get("config_key") == "strategy":
            kwargs["plugins"] = {**kwargs["plugins"], "poison": Poison()}
        original(self, **kwargs)

    monkeypatch.setattr(Strategy, "__init__", poisoned)
    with pytest.raises(TrainingDiverged, match=r"a trained weight became NaN or infinite in task 1 .* epoch 1: "
                                               r"training diverged; lower the learning rate \(strategy.lr\)"):
        run(compose_cfg(), tmp_path / "run")


def full_disk(under: Path):
    """A write_bytes / write_text that fails with ENOSPC for files under ``under``, as a full disk does."""
    real_bytes, real_text = Path.write_bytes, Path.write_text

    def check(path: Path) -> None:
        if Path(path).resolve().is_relative_to(under.resolve()):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    def write_bytes(self, data):
        check(self)
        return real_bytes(self, data)

    def write_text(self, data, *args, **kwargs):
        check(self)
        return real_text(self, data, *args, **kwargs)

    return write_bytes, write_text


def test_a_full_cache_disk_warns_and_the_run_goes_on(compose_cfg, tmp_path, monkeypatch, caplog):
    cache = tmp_path / "cache"
    write_bytes, write_text = full_disk(cache / "pretrained")
    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    monkeypatch.setattr(Path, "write_text", write_text)
    summary = run(compose_cfg(cache=cache), tmp_path / "run")
    assert summary["status"] == "completed"
    assert "could not store the pretrained model in the cache" in caplog.text


def test_a_full_output_disk_stops_in_one_line_and_keeps_what_was_finished(compose_cfg, tmp_path, monkeypatch):
    folder = tmp_path / "run"
    real = Path.write_text

    def write_text(self, data, *args, **kwargs):  # the disk fills up when the summary is written
        if self.name.startswith(".summary.json"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real(self, data, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)
    with pytest.raises(OutputError) as info:
        run(compose_cfg(), folder)
    message = str(info.value)
    assert "\n" not in message and "No space left on device" in message and str(folder) in message
    assert "rerun the same command to resume after task 2" in message
    assert list((folder / "checkpoints").glob("task2.pt"))
    monkeypatch.setattr(Path, "write_text", real)
    assert run(compose_cfg(), folder)["status"] == "completed"


def test_a_run_folder_made_from_python_is_that_of_the_command_line(tiny_root, tmp_path):
    import spikecl
    from spikecl.plot.__main__ import main as plot
    from spikecl.report.runs import find_run_folders, load_run

    overrides = [*TINY, *TINY_REPLAY, f"dataset.root={tiny_root}", f"cache_dir={tmp_path / 'cache'}",
                 "split.old_classes=[0,1]", "split.new_classes=[2,3]", "seed=4"]
    cfg = spikecl.compose(overrides)
    folder = tmp_path / "api"
    with spikecl.Experiment(cfg, folder) as experiment:
        summary = experiment.run()
    for name in ("config.yaml", ".hydra/config.yaml", ".hydra/overrides.yaml", ".hydra/hydra.yaml",
                 "fingerprint.json", "spikecl.log", "checkpoints/task2.pt", "summary.json", "metrics.csv"):
        assert (folder / name).is_file(), name
    assert find_run_folders([tmp_path]) == [folder]
    found = load_run(folder)
    assert found.completed and "seed=4" in found.overrides and found.choices.get("strategy") == "latent_replay"
    assert plot([str(folder), "--out", str(tmp_path / "plots")]) == 0
    # the same run again is reused, as the command line reuses a finished run folder
    with spikecl.Experiment(spikecl.compose(overrides), folder) as experiment:
        assert experiment.completed is not None and experiment.run() == summary


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "spikecl", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "HYDRA_FULL_ERROR": "0"}, timeout=300)


def test_an_output_folder_that_cannot_be_written_is_one_line(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    result = cli(f"hydra.run.dir={blocker}", cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.strip().splitlines() == [
        f"hydra.run.dir={blocker} is a file; choose a folder for the run's outputs"]
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write into a read-only folder")
        result = cli(f"hydra.run.dir={locked / 'run'}", cwd=tmp_path)
        assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
        assert "cannot be written" in result.stderr and "Traceback" not in result.stderr
    finally:
        locked.chmod(0o700)


def test_an_old_key_on_the_command_line_names_the_new_one(tmp_path):
    result = cli("strategy.buffer_size=640", cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.strip().splitlines() == [
        "strategy.buffer_size is a key of an earlier spikecl; it is now strategy.plugins.replay.policy.capacity "
        "(see CHANGELOG.md)"]


def test_every_moved_key_is_refused_and_its_new_place_exists(tmp_path):
    # each new place is a key (or a `group=option key` pair) of the composed config: a later rename fails here
    from omegaconf import OmegaConf

    import spikecl
    from spikecl.cli import MOVED, check_overrides

    for old, new in MOVED.items():
        with pytest.raises(ConfigError, match=f"^{old} is a key of an earlier spikecl"):
            check_overrides([f"{old}=1"])
        for part in new.split(" and "):
            words = part.split()
            cfg = spikecl.compose([w for w in words if "=" in w])
            key = words[-1]
            if key.startswith("+") or key == "tuned":  # a key the user adds, a config group
                continue
            assert OmegaConf.select(cfg, key, default="absent") != "absent", key


def test_ctrl_c_on_the_command_line_says_how_to_resume_in_one_line(tiny_root, tmp_path):
    import signal
    import time

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "spikecl", *TINY, *TINY_REPLAY, "strategy.epochs=200", f"dataset.root={tiny_root}",
           f"cache_dir={tmp_path / 'cache'}", "split.old_classes=[0,1]", "split.new_classes=[2,3]",
           f"hydra.run.dir={out}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and "task 1 (class 2) epoch 3/" not in _read(out / "spikecl.log"):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "Traceback" not in err
    assert "interrupted; rerun the same command to resume after pretraining (what was finished is kept)" in err


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""
