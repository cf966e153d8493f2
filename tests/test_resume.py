"""Results a researcher can trust: a finished folder is reused only when its fingerprint matches, a killed
run resumes after its last finished task with the result of an uninterrupted one, checkpoints as asked."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from spikecl import experiment, fingerprint, pretrained_cache
from spikecl.run import run
from tests.factories import write_learnable_shd

ROOT = Path(__file__).resolve().parents[1]
RESULT_KEYS = ("acc_old_before", "acc_new_before", "acc_old", "acc_new", "acc_all", "accuracy_matrix",
               "val_accuracy_matrix", "buffer_bytes", "buffer_samples", "bwt", "acc_new_mean")


def results(summary: dict) -> dict:
    return {k: summary[k] for k in RESULT_KEYS}


def metric_rows(folder: Path) -> list[tuple]:
    rows = csv.DictReader((folder / "metrics.csv").open())
    return [(r["phase"], r["task"], r["epoch"], r["data"], r["subset"], r["accuracy"], r["loss"]) for r in rows]


def test_a_changed_seed_in_the_same_folder_runs_again_and_keeps_the_old_files(compose_cfg, tmp_path):
    folder = tmp_path / "mine"
    first = run(compose_cfg("seed=0"), folder)
    second = run(compose_cfg("seed=5"), folder)
    assert second["seed"] == 5 and second["fingerprint"] != first["fingerprint"]
    stale = sorted(p.name for p in folder.glob("summary.json.stale-*"))
    assert len(stale) == 1 and json.loads((folder / stale[0]).read_text())["seed"] == 0
    assert list(folder.glob("metrics.csv.stale-*")) and list(folder.glob("model.pt.stale-*"))
    assert "the config changed (seed: 0 -> 5)" in (folder / "spikecl.log").read_text()
    third = run(compose_cfg("seed=5"), folder)  # same fingerprint now: reused, not run
    assert third == second and len(list(folder.glob("summary.json.stale-*"))) == 1


def test_another_data_content_runs_again_the_same_content_elsewhere_does_not(compose_cfg, tmp_path, tiny_root):
    folder = tmp_path / "run"
    first = run(compose_cfg(), folder)
    copy = tmp_path / "copy"
    shutil.copytree(tiny_root, copy)  # the same files at another path: same results
    assert run(compose_cfg(f"dataset.root={copy}"), folder) == first
    other = tmp_path / "other"
    write_learnable_shd(other, classes=4, speakers=4, per_speaker_class=5, seed=1)
    again = run(compose_cfg(f"dataset.root={other}"), folder)
    assert again["fingerprint"] != first["fingerprint"]
    assert "the data files' content changed" in (folder / "spikecl.log").read_text()


def test_a_code_change_runs_again_and_retrains(compose_cfg, tmp_path, monkeypatch):
    folder = tmp_path / "run"
    first = run(compose_cfg(), folder)
    assert not first["pretrain_cached"]
    monkeypatch.setattr(fingerprint, "code_fingerprint", lambda: "0.2.0+edited")
    monkeypatch.setattr(experiment, "code_fingerprint", lambda: "0.2.0+edited")
    monkeypatch.setattr(pretrained_cache, "code_fingerprint", lambda: "0.2.0+edited")
    again = run(compose_cfg(), folder)
    assert again["fingerprint"] != first["fingerprint"] and again["code"] == "0.2.0+edited"
    assert not again["pretrain_cached"]  # the pretraining cache key holds the code fingerprint too
    assert "the code changed" in (folder / "spikecl.log").read_text()


@pytest.mark.parametrize("policy,kept", [("last", ["task2.pt"]), ("all", ["task0.pt", "task1.pt", "task2.pt"]),
                                         ("none", [])])
def test_checkpoint_policies(compose_cfg, tmp_path, policy, kept):
    run(compose_cfg(f"checkpoints={policy}"), tmp_path / "run")
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("*.pt")) == kept
    assert not list((tmp_path / "run" / "checkpoints").glob(".*"))  # no temporary file left
    if kept:
        state = torch.load(tmp_path / "run" / "checkpoints" / kept[-1], weights_only=False)
        assert state["learned"] == 2 and "replay" in state["plugins"] and state["plugins"]["replay"]["buffer"]


def test_a_checkpoint_of_another_experiment_is_not_resumed(compose_cfg, tmp_path):
    folder = tmp_path / "run"
    run(compose_cfg("checkpoints=all"), folder)
    (folder / "summary.json").unlink()  # as if killed after the last checkpoint
    (folder / "fingerprint.json").unlink()  # and its fingerprint lost: the checkpoints' own digest decides
    other = run(compose_cfg("seed=3"), folder)
    assert other["seed"] == 3
    assert "is of another experiment" in (folder / "spikecl.log").read_text()


@pytest.mark.trained_figures
def test_sigkill_mid_continual_learning_then_rerun_equals_an_uninterrupted_run(tiny_root, tmp_path):
    from tests.conftest import TINY, TINY_REPLAY

    def command(out: Path) -> list[str]:
        return [sys.executable, "-m", "spikecl", *TINY, *TINY_REPLAY, f"dataset.root={tiny_root}",
                f"cache_dir={tmp_path / 'cache'}", "split=progressive", "split.old_classes=[0,1]",
                "split.new_classes=[2,3]", "+strategy.plugins.hang._target_=tests.example_plugin.hang.HangAfterTask",
                "plugin=ewc", f"hydra.run.dir={out}"]

    reference = subprocess.run(command(tmp_path / "reference"), capture_output=True, text=True, cwd=ROOT,
                               timeout=300)
    assert reference.returncode == 0, reference.stderr

    out, marker = tmp_path / "killed", tmp_path / "hanging"
    proc = subprocess.Popen(command(out), cwd=ROOT, env={**os.environ, "SPIKECL_TEST_HANG": str(marker)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marker.exists(), "the run never reached the second task's end"
    proc.send_signal(signal.SIGKILL)  # during task 2, after the checkpoint of task 1
    proc.wait(timeout=30)
    assert not (out / "summary.json").exists() and (out / "checkpoints" / "task1.pt").is_file()

    resumed = subprocess.run(command(out), capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in (out / "spikecl.log").read_text()
    a = json.loads((tmp_path / "reference" / "summary.json").read_text())
    b = json.loads((out / "summary.json").read_text())
    assert results(a) == results(b) and a["fingerprint"] == b["fingerprint"]
    assert metric_rows(tmp_path / "reference") == metric_rows(out)
    assert torch.equal(torch.load(tmp_path / "reference" / "model.pt")["w_out"], torch.load(out / "model.pt")["w_out"])
