"""A split and a storage policy from outside the package (docs/extending.md), through a real run."""

from __future__ import annotations

import csv

import numpy as np

from spikecl.experiment import Experiment


def test_a_split_of_your_own_runs_and_reports_every_task(compose_cfg, tmp_path):
    cfg = compose_cfg("split.old_classes=[0]", "split.new_classes=[1,2,3]",
                      "split._target_=tests.example_plugin.pairs.ClassPairs")
    with Experiment(cfg, tmp_path / "run") as experiment:
        summary = experiment.run()
        assert [t.classes for t in experiment.tasks] == [[0], [1, 2], [3]]
    assert summary["split"] == "class_pairs" and summary["per_task"] is True
    assert summary["task_names"] == ["pretrain", "classes 1+2", "classes 3"]
    subsets = {r["subset"] for r in csv.DictReader((tmp_path / "run" / "metrics.csv").open())}
    assert {"task0", "task1", "task2", "seen"} <= subsets  # per-task rows, as the split asked


def test_a_storage_policy_of_your_own_keeps_what_it_says(compose_cfg, tmp_path):
    cfg = compose_cfg("split.old_classes=[0,1]", "split.new_classes=[2,3]",
                      "strategy.plugins.replay.policy._target_=tests.example_plugin.recent.Recent",
                      "strategy.plugins.replay.policy.capacity=6", "strategy.plugins.replay.policy.growth=0")
    with Experiment(cfg, tmp_path / "run") as experiment:
        summary = experiment.run()
        replay = experiment.strategy.plugins["replay"]
        stored = replay.buffer.sample_ids
        # before the last task: the class-2 task's last 6 train samples pushed every pretraining sample out
        assert np.array_equal(stored, experiment.tasks[1].train[-6:])
    assert summary["policy"] == "Recent" and summary["buffer_samples"] == 6


def test_the_doc_examples_are_the_tested_modules():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    blocks = re.findall(r"```python\n(.*?)```", (root / "docs" / "extending.md").read_text(), flags=re.S)
    for module in ("pairs.py", "recent.py"):
        assert (root / "tests" / "example_plugin" / module).read_text() in blocks, module
