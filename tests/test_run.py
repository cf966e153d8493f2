"""End-to-end runs on a tiny SHD-format data set: run folder, determinism, pretraining cache, errors."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from spikecl.cl import Strategy
from spikecl.errors import ConfigError, TrainingDiverged
from spikecl.run import run
from spikecl.utils.atomic import TEMP_GLOB

SUMMARY_KEYS = {"status", "dataset", "protocol", "split", "strategy", "latent_depth", "seed", "per_task",
                "device", "acc_old_before", "acc_new_before", "acc_old", "acc_new", "acc_all", "forgetting", "fwt",
                "initial_accuracy", "pretrain_seconds",
                "cl_seconds", "pretrain_samples_per_second", "cl_samples_per_second", "pretrain_cached", "git_sha",
                "versions", "accuracy_matrix", "acc_new_mean", "bwt", "forgetting_per_task"}


def check_run_folder(folder: Path, tasks: int) -> dict:
    for name in ("spikecl.log", "metrics.csv", "summary.json", "model.pt", "per_group_accuracy.csv"):
        assert (folder / name).is_file(), name
    summary = json.loads((folder / "summary.json").read_text())
    assert SUMMARY_KEYS <= summary.keys()
    assert summary["status"] == "completed"
    for key in ("acc_old_before", "acc_new_before", "acc_old", "acc_new", "acc_all", "acc_new_mean"):
        assert 0.0 <= summary[key] <= 1.0, key
    assert summary["forgetting"] == pytest.approx(summary["acc_old_before"] - summary["acc_old"])
    assert len(summary["accuracy_matrix"]) == tasks and all(len(r) == tasks for r in summary["accuracy_matrix"])
    assert set(summary["versions"]) >= {"python", "torch", "spikecl"}
    rows = list(csv.DictReader((folder / "metrics.csv").open()))
    assert {"phase", "task", "epoch", "subset", "accuracy", "loss", "seconds"} <= rows[0].keys()
    assert {r["phase"] for r in rows} == {"pretrain", "cl"}
    assert {r["subset"] for r in rows} >= {"old", "new", "all"}
    state = torch.load(folder / "model.pt", weights_only=True)
    assert "w_out" in state
    return summary


@pytest.mark.parametrize("strategy", ["naive", "rehearsal", "latent_replay"])
def test_run_writes_a_complete_folder(compose_cfg, tmp_path, strategy):
    summary = run(compose_cfg(f"strategy={strategy}", "compression=1to4"), tmp_path / "run")
    s = check_run_folder(tmp_path / "run", tasks=3)
    assert s == summary
    assert s["strategy"] == strategy and s["split"] == "progressive" and s["dataset"] == "shd"
    buffer = {"buffer_samples", "buffer_bytes", "buffer_bytes_1bit", "bytes_per_sample", "compression_ratio"}
    if strategy == "naive":  # no buffer, no buffer figures
        assert not buffer & s.keys()
    else:
        assert s["buffer_samples"] == 16 + 4 and s["buffer_bytes"] > 0 and s["compression_ratio"] == 4
    per_group = list(csv.DictReader((tmp_path / "run" / "per_group_accuracy.csv").open()))
    assert {r["group"] for r in per_group} == {"class", "speaker"}


@pytest.mark.parametrize("split", ["split=sample_incremental", "split=class_incremental"])
def test_other_splits(compose_cfg, tmp_path, split):
    s = run(compose_cfg(split, "split.speaker=1" if "sample" in split else "split.new_class=3",
                        "strategy=latent_replay", "strategy.latent_depth=1"), tmp_path / "run")
    check_run_folder(tmp_path / "run", tasks=2)
    assert s["split"] == split.split("=")[1]


@pytest.mark.trained_figures
def test_same_seed_same_metrics_and_cache(compose_cfg, tmp_path):
    a = run(compose_cfg(), tmp_path / "a")
    assert a["pretrain_cached"] is False
    b = run(compose_cfg(cache=tmp_path / "other-cache"), tmp_path / "b")  # trains again from scratch
    assert b["pretrain_cached"] is False
    c = run(compose_cfg(), tmp_path / "c")  # same key: loaded from the cache
    assert c["pretrain_cached"] is True
    for key in ("acc_old_before", "acc_old", "acc_new", "acc_all", "accuracy_matrix", "buffer_bytes"):
        assert a[key] == b[key] == c[key], key
    assert "loaded from the cache" in (tmp_path / "c" / "spikecl.log").read_text()
    d = run(compose_cfg("pretrain.lr=4e-3"), tmp_path / "d")  # another key: trains
    assert d["pretrain_cached"] is False
    # a strategy change keeps the key
    e = run(compose_cfg("strategy=rehearsal"), tmp_path / "e")
    assert e["pretrain_cached"] is True


def test_corrupt_cache_entry_is_retrained(compose_cfg, tmp_path):
    run(compose_cfg(), tmp_path / "a")
    (entry,) = (tmp_path / "cache" / "pretrained").glob("*.pt")
    entry.write_bytes(entry.read_bytes()[:100])
    b = run(compose_cfg(), tmp_path / "b")
    assert b["pretrain_cached"] is False
    assert "unreadable" in (tmp_path / "b" / "spikecl.log").read_text()
    assert not list((tmp_path / "cache" / "pretrained").glob(TEMP_GLOB))


def test_completed_folder_is_skipped(compose_cfg, tmp_path):
    first = run(compose_cfg(), tmp_path / "run")
    mtime = (tmp_path / "run" / "model.pt").stat().st_mtime_ns
    again = run(compose_cfg(), tmp_path / "run")
    assert again == first and (tmp_path / "run" / "model.pt").stat().st_mtime_ns == mtime


def test_nan_loss_stops_with_phase_and_epoch(compose_cfg, tmp_path, monkeypatch):
    real = Strategy.train_epoch
    calls = []

    def diverging(*args, **kwargs):
        loss, seen = real(*args, **kwargs)
        calls.append(1)
        return (float("nan") if len(calls) == 3 else loss), seen

    monkeypatch.setattr(Strategy, "train_epoch", diverging)
    with pytest.raises(TrainingDiverged, match=r"the loss became nan in task 1 \(class 2\) epoch 1: training "
                                               r"diverged; lower the learning rate \(strategy.lr\)"):
        run(compose_cfg(), tmp_path / "run")
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    assert rows and not (tmp_path / "run" / "summary.json").exists()


@pytest.mark.parametrize("override,message", [
    ("dataset.test_fraction=1.5", "dataset.test_fraction=1.5"),
    ("split.new_classes=[1,2]", "overlap"),
    ("split.new_classes=[]", "split.new_classes=[]"),
    ("strategy.latent_depth=7", "strategy.latent_depth=7"),
    ("compression=1to4", None),
    ("dataset.nb_steps=30", "compression.ratio"),
    ("strategy.batch_size=0", "strategy.batch_size=0"),
    ("strategy.plugins.replay.mix=shuffled", "strategy.plugins.replay.mix='shuffled'"),
    ("strategy.epochs=abc", "strategy.epochs='abc'"),
    ("eval.every_epoch=abc", "eval.every_epoch='abc'"),
    ("model.recurrent=abc", "model.recurrent='abc'"),
    ("+strategy.plugins.replay.bufer_size=3", "strategy.plugins.replay: "),
    ("+strategy.plugins.mine._target_=nowhere.Mine", "strategy.plugins.mine._target_='nowhere.Mine'"),
    ("model.hidden=[]", "model.hidden"),
])
def test_bad_values_fail_before_reading_data(compose_cfg, tmp_path, override, message):
    cfg = compose_cfg(override, "dataset.root=/nonexistent", "compression=1to4")
    if message is None:  # the valid case reaches the data layer, which names the missing file
        with pytest.raises(ConfigError, match="/nonexistent"):
            run(cfg, tmp_path / "run")
        return
    with pytest.raises(ConfigError) as err:
        run(cfg, tmp_path / "run")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_absent_speaker_and_class_are_named(compose_cfg, tmp_path):
    with pytest.raises(ConfigError, match="split.speaker"):
        run(compose_cfg("split=sample_incremental", "split.speaker=9"), tmp_path / "a")
    with pytest.raises(ConfigError, match="split.new_class"):
        run(compose_cfg("split=class_incremental", "split.new_class=12"), tmp_path / "b")


def test_cli_subprocess_run(tiny_root, tmp_path):
    from tests.conftest import TINY

    out = tmp_path / "cli-run"
    cmd = [sys.executable, "-m", "spikecl", *TINY, f"dataset.root={tiny_root}", f"cache_dir={tmp_path / 'cache'}",
           "split=class_incremental", "split.new_class=2", f"hydra.run.dir={out}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    check_run_folder(out, tasks=2)
    assert (out / ".hydra" / "config.yaml").is_file()
    log = (out / "spikecl.log").read_text()
    assert "summary" in log and "final accuracy on all test data" in log
    assert "Succeeded: returned the validation accuracy on all classes (val_acc_all" in proc.stdout
    bad = subprocess.run(cmd[:-1] + ["strategy.plugins.replay.mix=bogus", f"hydra.run.dir={tmp_path / 'bad'}"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert bad.returncode != 0
    assert "strategy.plugins.replay.mix='bogus' is not valid" in bad.stderr and "Traceback" not in bad.stderr
    unknown = subprocess.run(cmd[:-1] + ["strategy=bogus", f"hydra.run.dir={tmp_path / 'unknown'}"],
                             capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert unknown.returncode != 0 and "Could not find 'strategy/bogus'" in unknown.stderr
    assert "latent_replay" in unknown.stderr  # Hydra lists the available options


def test_parallel_jobs_share_one_pretraining(compose_cfg, tmp_path, monkeypatch):
    """Two jobs asking for the same cache entry at once: one trains, the other waits and loads it."""
    import threading
    import time

    from spikecl import pretrained_cache as pretrain
    from tests.model_config import make_model

    trained, results = [], {}

    def job(name: str) -> None:
        model = make_model(nb_inputs=700, hidden=[8], nb_outputs=4)

        def train():
            trained.append(name)
            time.sleep(0.5)  # long enough for the other job to arrive while the entry is being made
            with torch.no_grad():
                model.w_out.fill_(0.25)
            return {"seconds": 0.5, "samples_per_second": 1.0, "rows": []}

        info, cached = pretrain.pretrained(model, "key", tmp_path / "cache", torch.device("cpu"), train)
        results[name] = (cached, model.w_out.detach().clone())

    threads = [threading.Thread(target=job, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(trained) == 1
    assert sorted(c for c, _ in results.values()) == [False, True]
    assert all(torch.equal(w, torch.full_like(w, 0.25)) for _, w in results.values())
    assert len(list((tmp_path / "cache" / "pretrained").glob("*.pt"))) == 1


def test_a_run_with_two_loggers_and_its_activity_figures(compose_cfg, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    folder = tmp_path / "run"
    summary = run(compose_cfg("logger=[csv,tensorboard]", "plots=true"), folder)
    for key in ("rate_l1", "rate_l3", "silent_l1", "synops_inference", "synops_train_depth"):
        assert summary[key] >= 0, key
    assert len(summary["activity_per_task"]) == 3 and summary["replay_activity"][0]["ratio"] == 2
    rows = [r for r in csv.DictReader((folder / "metrics.csv").open()) if r["rate_l1"]]
    assert [(r["task"], r["data"], r["subset"]) for r in rows] == [("0", "test", "all"), ("1", "test", "all"),
                                                                    ("2", "test", "all")]
    assert (folder / "scalars.csv").is_file() and (folder / "accuracy_matrix.csv").is_file()
    assert {p.name for p in (folder / "plots").glob("*.png")} == {"input.png", "layer1.png", "layer2.png",
                                                                   "layer3.png", "replay_d1_or_impulse_1to2.png",
                                                                   "rates.png"}
    events = EventAccumulator(str(folder / "tensorboard")).Reload()
    assert "cl/val/accuracy/all" in events.Tags()["scalars"] and "cl/activity/rate_l1" in events.Tags()["scalars"]


def test_a_readout_narrower_than_the_labels_is_named_before_pretraining(compose_cfg, tmp_path):
    with pytest.raises(ConfigError, match=r"model.nb_outputs=3 is not valid: the data set has \d+ classes"):
        run(compose_cfg("model.nb_outputs=3"), tmp_path / "run")
    assert not (tmp_path / "run" / "metrics.csv").exists()
