"""The benchmark: a quick run writes a complete bench.json; its helpers (generated SHD files, timing,
fallback data) work. The fast paths themselves are checked against the reference in test_model.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from spikecl.bench.__main__ import main
from spikecl.bench.measure import measure, measure_pair
from spikecl.bench.shd_files import write_random_shd_pair
from spikecl.bench.suite import Settings, bench_dataset, compose_config
from spikecl.data import files, load_dataset

CASES = ["pretrain", "latent_replay_d1", "latent_cache_d1", "latent_replay_d2", "latent_cache_d2",
         "latent_replay_d3", "latent_cache_d3", "inference"]


def test_quick_benchmark_writes_every_figure(tmp_path, capsys):
    out = tmp_path / "bench.json"
    threads = torch.get_num_threads()
    main(["--quick", "--device", "cpu", "--out", str(out)])
    assert torch.get_num_threads() == threads  # the run's thread setting does not leak
    result = json.loads(out.read_text())
    assert {"settings", "machine", "data_set", "activity", "equivalence", "cases", "data"} <= result.keys()
    assert [c["name"] for c in result["cases"]] == CASES
    for case in result["cases"]:
        fast = case["spikecl"]
        assert fast["samples_per_s"] > 0 and fast["peak_memory_bytes"] > 0
        if case["name"].startswith("latent_cache"):  # built once per phase: one timing, nothing to compare
            assert len(fast["seconds"]) == 1 and case["reference"] is None and case["speedup"] is None
        else:
            assert len(fast["seconds"]) == result["settings"]["repeats"]
            ref = case["reference"]
            assert case["speedup"] == pytest.approx(ref["median_s"] / fast["median_s"])
    eq = result["equivalence"]
    assert eq["last_layer_spike_mismatches"] == 0 and eq["grad_max_rel_diff"] < 1e-3
    assert 0 < result["activity"]["input"] < 1
    data = result["data"]
    assert data["samples"] == result["settings"]["data_samples"]
    assert 0 < data["events"] <= data["spikes"]
    assert data["cold"]["median_s"] > 0 and data["cached"]["median_s"] > 0
    assert data["binned_nbytes"] < data["dense_float32_nbytes"]
    printed = capsys.readouterr().out
    assert "speed-up" in printed and "latent_replay_d2" in printed and str(out) in printed


def test_generated_shd_files_load_with_the_counts_written(tmp_path):
    spikes = write_random_shd_pair(tmp_path, nb_samples=30, mean_spikes=50.0, seed=1)
    data = load_dataset({"name": "gen", "root": str(tmp_path), "train_file": "shd_train.h5",
                         "test_file": "shd_test.h5", "nb_steps": 100, "max_time": 1.4, "nb_units": 700},
                        tmp_path / "cache")
    assert len(data) == 30 and int(data.from_test_file.sum()) == 6
    # a few spikes lie beyond max_time and spikes sharing a (step, unit) merge into one event
    assert 0.9 * spikes < int(data.spikes.counts.sum()) <= spikes
    assert set(np.unique(data.labels)) <= set(range(20))


def test_measure_times_only_the_repeats():
    calls = []
    timing = measure(lambda: calls.append(1), samples=10, device=torch.device("cpu"), warmup=2, repeats=3)
    assert len(calls) == 5 and len(timing.seconds) == 3
    assert timing.samples_per_s == pytest.approx(10 / timing.median)
    assert timing.peak_memory_bytes > 0 and timing.gpu_utilization_percent is None


def test_generated_data_stands_in_for_a_missing_embedded_set(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "EMBEDDED_ROOT", tmp_path / "missing")
    settings = Settings.quick_settings(fallback_mean_spikes=200.0)
    data, source = bench_dataset(compose_config(["dataset=synthetic"]), tmp_path, settings)
    assert "generated" in source and "missing" in source
    assert len(data) >= settings.batch_size * settings.batches


def test_measure_keeps_the_fastest_thread_count_and_restores_the_setting():
    seen = []
    before = torch.get_num_threads()
    timing = measure(lambda: seen.append(torch.get_num_threads()), samples=1, device=torch.device("cpu"),
                     warmup=0, repeats=2, threads=(1, 2))
    assert seen == [1, 1, 2, 2] and timing.threads in (1, 2)
    assert torch.get_num_threads() == before


def test_quick_benchmark_of_the_adlif_model(tmp_path, capsys):
    out = tmp_path / "bench.json"
    main(["--quick", "--device", "cpu", "--model", "adlif", "--out", str(out)])
    result = json.loads(out.read_text())
    assert result["settings"]["model"] == "adlif"
    assert [c["name"] for c in result["cases"]] == CASES
    targets = {c["name"]: c["target_speedup"] for c in result["cases"]}
    assert targets["pretrain"] == 3.0 and targets["inference"] == 2.0 and targets["latent_replay_d2"] is None
    eq = result["equivalence"]
    assert eq["last_layer_spike_mismatches"] == 0 and eq["grad_max_rel_diff"] < 1e-3
    assert "model adlif" in capsys.readouterr().out


def test_an_unknown_model_preset_is_one_line():
    with pytest.raises(SystemExit, match="--model lstm is not valid; allowed: .*adlif.*rsnn"):
        main(["--quick", "--model", "lstm"])


def test_paired_timing_alternates_the_two_sides():
    calls = []
    ref, fast = measure_pair(lambda: calls.append("r"), lambda: calls.append("f"), samples=4,
                             device=torch.device("cpu"), warmup=1, repeats=3)
    assert "".join(calls) == "rf" * 4 and len(ref.seconds) == len(fast.seconds) == 3
    assert ref.peak_memory_bytes > 0 and fast.samples_per_s == pytest.approx(4 / fast.median)
