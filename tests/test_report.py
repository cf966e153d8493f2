"""Tests of spikecl.report on fabricated run folders in the format spikecl.run.run writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from spikecl.report import find_run_folders, load_run, read_completed_summary, write_report
from spikecl.report.table import human_bytes, parse_overrides

SRC = Path(__file__).resolve().parents[1] / "src"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EPOCHS = 3


def accuracy(depth: int | None, buffer: int, speaker: int) -> float:
    """Fabricated final accuracy, so that tests can recompute the expected means."""
    return 0.5 + 0.1 * (depth or 0) + buffer / 100_000 + 0.01 * speaker


def make_run(
    folder: Path,
    *,
    split: str = "sample_incremental",
    strategy: str = "latent_replay",
    depth: int | None = 1,
    buffer: int = 640,
    ratio: int = 1,
    speaker: int | None = 0,
    new_class: int | None = None,
    seed: int = 0,
    status: str | None = "completed",
    metrics: bool = True,
    tasks: int = 1,
    overrides: list[str] | None = None,
    extra: dict | None = None,
) -> Path:
    """A run folder: .hydra records, metrics.csv and (unless status is None) summary.json."""
    hydra_dir = folder / ".hydra"
    hydra_dir.mkdir(parents=True)
    split_cfg: dict = {"name": split}
    if split == "progressive":
        split_cfg.update(old_classes=list(range(10)), new_classes=list(range(10, 10 + tasks)))
    elif split == "sample_incremental":
        split_cfg["speaker"] = speaker
    else:
        split_cfg["new_class"] = new_class
    config = {"seed": seed, "split": split_cfg, "strategy": {"name": strategy, "latent_depth": depth}}
    (hydra_dir / "config.yaml").write_text(yaml.safe_dump(config))
    choices = {
        "split": split, "strategy": strategy, "compression": f"1to{ratio}", "dataset": "synthetic",
        "hydra/launcher": "basic", "hydra/sweeper": "spikecl",
    }  # fmt: skip
    (hydra_dir / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"runtime": {"choices": choices}}}))
    if overrides is None:
        overrides = [f"strategy={strategy}", f"strategy.latent_depth={depth}", f"strategy.plugins.replay.buffer_size={buffer}"]
        overrides += [f"split.speaker={speaker}"] if split == "sample_incremental" else []
    (hydra_dir / "overrides.yaml").write_text(yaml.safe_dump(overrides))

    final = accuracy(depth, buffer, speaker or 0)
    if metrics:  # as spikecl.run writes it: task 0 = evaluation before CL, tasks 1.. = epochs 1..EPOCHS
        rows = [("pretrain", 0, e, "all", 0.4 + 0.01 * e) for e in range(1, EPOCHS + 1)]
        rows += [("cl", 0, 0, subset, 0.45) for subset in ("old", "seen", "all")]
        for task in range(1, tasks + 1):
            late = 0.01 * (tasks - task)
            rows += [("cl", task, e, "all", final - 0.02 * (EPOCHS - e) - late) for e in range(1, EPOCHS + 1)]
            rows += [("cl", task, e, subset, 0.9) for e in range(1, EPOCHS + 1) for subset in ("new", "seen")]
        frame = pd.DataFrame(rows, columns=["phase", "task", "epoch", "subset", "accuracy"])
        frame.assign(loss=1.0, train_loss=1.0, seconds=0.1).to_csv(folder / "metrics.csv", index=False)
    if status is not None:
        summary = {
            "status": status, "dataset": "synthetic", "protocol": "merged", "split": split,
            "strategy": strategy, "compression_ratio": ratio, "codec": "or_impulse", "latent_depth": depth,
            "seed": seed, "device": "cpu", "acc_old_before": final, "acc_old": final - 0.05, "acc_new": 0.9,
            "acc_all": final,
            "forgetting": 0.02, "buffer_samples": buffer, "buffer_bytes": 4 * buffer * 2000 // ratio,
            "buffer_bytes_1bit": buffer * 2500 // ratio, "speaker": speaker, "new_class": new_class,
            "buffer_size": buffer, "epochs": EPOCHS, "lr": 2e-4,
            "versions": {"python": "3.11", "torch": "2.x", "spikecl": "0.1.0"},
        }  # fmt: skip
        if split == "progressive":
            summary["accuracy_matrix"] = [[0.9] * (tasks + 1) for _ in range(tasks + 1)]
            summary["forgetting_per_task"] = [0.0] * tasks
            summary["acc_new_mean"] = 0.8
            summary["bwt"] = -0.02
            summary["task_names"] = ["pretrain"] + [f"class {c}" for c in range(10, 10 + tasks)]
        summary.update(extra or {})
        (folder / "summary.json").write_text(json.dumps(summary))
    return folder


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """A sample-incremental grid (2 speakers x depths 1,2 x buffers 640,1280), a naive run, two progressive
    runs, one unfinished folder and one failed one, at different depths of the tree."""
    root = tmp_path / "sweep"
    for speaker in (0, 1):
        for depth in (1, 2):
            for buffer in (640, 1280):
                make_run(root / f"depth={depth},buffer={buffer},speaker={speaker}", depth=depth, buffer=buffer,
                         speaker=speaker)  # fmt: skip
    make_run(root / "naive" / "speaker=0", strategy="naive", depth=None, buffer=0, metrics=False)
    for depth in (0, 3):
        make_run(root / "progressive" / "nested" / f"d={depth}", split="progressive", depth=depth, buffer=64,
                 ratio=2, speaker=None, tasks=4)  # fmt: skip
    make_run(root / "unfinished", depth=1, buffer=640, status=None)
    make_run(root / "failed", depth=1, buffer=640, speaker=5, status="failed")
    return root


def test_find_and_load_run_folders(sweep: Path) -> None:
    folders = find_run_folders([sweep])
    assert len(folders) == 8 + 1 + 2 + 2
    assert (sweep / "progressive" / "nested" / "d=0").resolve() in folders
    run = load_run(sweep / "unfinished")
    assert not run.completed and "no summary.json" in run.problem
    failed = load_run(sweep / "failed")
    assert not failed.completed and "'failed'" in failed.problem
    assert read_completed_summary(sweep / "failed") is None
    assert read_completed_summary(sweep / "naive" / "speaker=0")["strategy"] == "naive"
    with pytest.raises(FileNotFoundError):
        find_run_folders([sweep / "missing"])


def test_summary_csv_has_one_row_per_run_with_choices_overrides_and_scalars(sweep: Path) -> None:
    result = write_report([sweep])
    frame = pd.read_csv(result.summary_csv)
    assert len(frame) == 13
    assert (frame["status"] == "completed").sum() == 11
    for column in ["run_dir", "problem", "choice.strategy", "choice.compression", "choice.hydra/launcher",
                   "override.strategy.latent_depth", "override.split.speaker", "acc_all", "buffer_bytes_1bit",
                   "versions.torch", "bwt", "lr"]:  # fmt: skip
        assert column in frame.columns, column
    assert "accuracy_matrix" not in frame.columns  # lists are not scalars
    row = frame[frame["run_dir"] == "depth=2,buffer=1280,speaker=1"].iloc[0]
    assert row["acc_all"] == pytest.approx(accuracy(2, 1280, 1))
    assert row["override.strategy.plugins.replay.buffer_size"] == 1280
    assert frame.loc[frame["run_dir"] == "unfinished", "status"].item() == "incomplete"


def test_report_md_averages_completed_runs_only_and_lists_incomplete(sweep: Path) -> None:
    text = write_report([sweep]).report_md.read_text()
    assert "### sample_incremental" in text and "### progressive" in text
    expected = [100 * accuracy(1, 640, s) for s in (0, 1)]  # the failed speaker-5 run must not count
    mean = sum(expected) / 2
    std = pd.Series(expected).std()
    line = next(
        line for line in text.splitlines() if line.startswith("| latent_replay | 1 | 640 ")
    )
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[3] == "2"  # runs
    assert cells[4] == "2"  # speakers
    assert f"{mean:.1f} ± {std:.1f}" in cells
    assert "## Incomplete or flagged runs" in text
    assert "- `unfinished`: no summary.json" in text
    assert "- `failed`: summary.json status is 'failed'" in text
    assert "Common to all rows: dataset=synthetic" in text


def test_every_figure_is_drawn(sweep: Path) -> None:
    result = write_report([sweep])
    names = sorted(p.name for p in result.plots)
    assert names == [
        "acc_vs_depth_progressive.png", "acc_vs_depth_sample_incremental.png",
        "acc_vs_epoch_sample_incremental.png", "acc_vs_learned_classes_progressive.png",
        "acc_vs_memory_progressive.png", "acc_vs_memory_sample_incremental.png",
    ]  # fmt: skip
    for path in result.plots:
        assert path.parent == sweep / "plots"
        assert path.read_bytes()[:8] == PNG_MAGIC
        assert f"](plots/{path.name})" in result.report_md.read_text()


def test_partial_sweep_skips_figures_with_a_note(tmp_path: Path) -> None:
    make_run(tmp_path / "a", strategy="naive", depth=None, buffer=0, metrics=False)
    make_run(tmp_path / "b", status=None)
    result = write_report([tmp_path])
    text = result.report_md.read_text()
    assert result.plots == []
    assert "`acc_vs_epoch_sample_incremental.png`: no metrics.csv rows" in text
    assert "`acc_vs_depth_sample_incremental.png`: no sample_incremental run with a latent depth" in text
    assert "`acc_vs_memory_sample_incremental.png`: no sample_incremental run with a replay buffer" in text
    assert result.incomplete == [(tmp_path / "b").resolve()]


def test_only_incomplete_runs_still_reports(tmp_path: Path) -> None:
    make_run(tmp_path / "x", status=None, metrics=False)
    result = write_report([tmp_path])
    text = result.report_md.read_text()
    assert "No completed runs." in text and "- `x`: no summary.json" in text
    assert len(pd.read_csv(result.summary_csv)) == 1


def test_stale_figures_are_removed(sweep: Path) -> None:
    write_report([sweep])
    stale = sweep / "plots" / "acc_vs_epoch_class_incremental.png"
    stale.write_bytes(PNG_MAGIC)
    mine = sweep / "plots" / "notes.png"
    mine.write_bytes(PNG_MAGIC)
    write_report([sweep])
    assert not stale.exists() and mine.exists()


def test_sweep_status_failures_are_listed(sweep: Path) -> None:
    status = {
        "counts": {"completed": 11, "skipped": 0, "failed": 1},
        "jobs": [{"num": 3, "dir": None, "name": "strategy.latent_depth=9", "overrides": ["strategy.latent_depth=9"],
                  "status": "failed", "error": "ConfigError: latent_depth 9\n\ndetails"}],
    }  # fmt: skip
    (sweep / "sweep_status.json").write_text(json.dumps(status))
    text = write_report([sweep]).report_md.read_text()
    assert "## Sweep status" in text
    assert "- failed #3: `strategy.latent_depth=9` (no folder): ConfigError: latent_depth 9\n" in text


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "spikecl.report", *args], capture_output=True, text=True, env=env)


def test_cli_merges_dirs_into_out(tmp_path: Path) -> None:
    make_run(tmp_path / "a" / "run1", speaker=0)
    make_run(tmp_path / "b" / "run2", speaker=1)
    out = tmp_path / "out"
    proc = run_cli(str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "2 run folders (2 completed, 0 incomplete or flagged)" in proc.stdout
    frame = pd.read_csv(out / "summary.csv")
    assert sorted(Path(p).name for p in frame["run_dir"]) == ["run1", "run2"]
    assert (out / "report.md").is_file() and (out / "plots" / "acc_vs_epoch_sample_incremental.png").is_file()


def test_cli_errors(tmp_path: Path) -> None:
    empty = run_cli(str(tmp_path))
    assert empty.returncode == 1 and "no run folders" in empty.stderr
    missing = run_cli(str(tmp_path / "nope"))
    assert missing.returncode == 2 and "is not a folder" in missing.stderr


def test_helpers() -> None:
    assert human_bytes(160_000) == "160 kB"
    assert human_bytes(22_400_000) == "22.4 MB"
    assert human_bytes(625) == "625 B"
    assert parse_overrides(["+a.b=1", "++c=x=y", "d=[1,2]"]) == {"a.b": "1", "c": "x=y", "d": "[1,2]"}


def figure(root: Path, name: str, data: str = "test"):
    """The report's figure ``name`` for the runs below ``root``, drawn but not written, and its notes."""
    from spikecl.report import plots
    from spikecl.report.table import summary_frame

    runs = [load_run(p) for p in find_run_folders([root])]
    return plots.draw_figure(summary_frame(runs, root), runs, name, data)


def test_figure_data_follow_the_paper(sweep: Path) -> None:
    fig6, _ = figure(sweep, "acc_vs_learned_classes_progressive")
    lines = fig6.axes[0].lines
    curves = [line for line in lines if not line.get_label().startswith("pretrained")]
    assert [list(line.get_xdata()) for line in curves] == [[11, 12, 13, 14]] * 2  # classes learned, 10 old
    pretrained = next(line for line in lines if line.get_label() == "pretrained")
    assert pretrained.get_ydata()[0] == pytest.approx(45.0)
    assert fig6.axes[0].get_ylabel() == "test accuracy, all classes (%)"

    fig5a, _ = figure(sweep, "acc_vs_epoch_sample_incremental")
    line = next(line for line in fig5a.axes[0].lines if line.get_label().startswith("latent_replay d=1 buffer 640 "))
    assert list(line.get_xdata()) == list(range(EPOCHS + 1))  # epoch 0: before CL
    assert line.get_ydata()[0] == pytest.approx(45.0)
    assert line.get_ydata()[-1] == pytest.approx(100 * (accuracy(1, 640, 0) + accuracy(1, 640, 1)) / 2)


# ------------------------------------------------------------------------------------ joint and activity

JOINT_ACC = 0.95


def add_joint(root: Path, *, split: str = "progressive", seed: int = 0, tasks: int = 4, **kwargs) -> Path:
    """A joint-training run (strategy=joint) of the fixture's progressive setting: every row the same."""
    row = [JOINT_ACC - 0.01 * t for t in range(tasks + 1)]
    return make_run(root / f"joint-{split}-seed{seed}", split=split, strategy="joint", depth=None, buffer=0,
                    speaker=None if split == "progressive" else 0, tasks=tasks, seed=seed,
                    extra={"acc_all": JOINT_ACC, "accuracy_matrix": [row] * (tasks + 1), "buffer_samples": 0,
                           "buffer_bytes": 0, "buffer_bytes_1bit": 0, "epochs": 0, **kwargs})  # fmt: skip


def table_rows(text: str, heading: str) -> list[list[str]]:
    """The cells of the markdown table right under ``heading`` (the first one after it)."""
    lines = text.splitlines()
    start = lines.index(heading)
    rows, inside = [], False
    for line in lines[start + 1:]:
        if line.startswith("|"):
            inside = True
            rows.append([c.strip() for c in line.strip("|").split("|")])
        elif inside:
            break
    return rows


def test_joint_is_the_upper_bound_of_every_method_of_its_setting(sweep: Path) -> None:
    add_joint(sweep)
    add_joint(sweep / "other", seed=1)  # another seed: the reference of no fixture run
    result = write_report([sweep])
    frame = pd.read_csv(result.summary_csv)
    progressive = frame[(frame["split"] == "progressive") & (frame["strategy"] == "latent_replay")]
    assert len(progressive) == 2
    for _, row in progressive.iterrows():
        assert row["joint_acc_all"] == pytest.approx(JOINT_ACC)
        assert row["gap_to_joint"] == pytest.approx(JOINT_ACC - row["acc_all"])
        assert row["joint_run"].endswith("joint-progressive-seed0")
    assert frame.loc[frame["split"] == "sample_incremental", "gap_to_joint"].isna().all()  # no joint there
    assert {f"final_acc.task{i}" for i in range(5)} <= set(frame.columns)

    text = result.report_md.read_text()
    rows = table_rows(text, "### progressive")
    header, body = rows[0], rows[2:]
    assert body[-1][0] == "joint (upper bound)"  # last, and named
    gap = header.index("gap to joint (pp)")
    assert body[-1][gap] == ""  # no gap of joint to itself
    d0 = next(r for r in body if r[header.index("latent_depth")] == "0")
    assert d0[gap] == f"{100 * (JOINT_ACC - accuracy(0, 64, 0)):.1f}"
    assert body[-1][header.index("runs")] == "2" and body[-1][header.index("seeds")] == "2"

    assert "## Final accuracy per task" in text
    per_task = table_rows(text, "## Final accuracy per task")
    header, body = per_task[0], per_task[2:]
    assert header[-5:] == ["pretrain", "class 10", "class 11", "class 12", "class 13"]
    joint = body[-1]
    assert joint[0] == "joint (upper bound)"
    assert joint[-5:] == [f"{100 * (JOINT_ACC - 0.01 * t):.1f} ± 0.0" for t in range(5)]  # two seeds
    assert all(r[-5:] == ["90.0"] * 5 for r in body[:-1])

    fig6, _ = figure(sweep, "acc_vs_learned_classes_progressive")
    lines = fig6.axes[0].lines
    joint = [line for line in lines if line.get_gid() == "joint"]
    assert len(joint) == 1 and joint[0].get_label() == "joint (upper bound), of the same setting"  # never a curve
    assert not any("joint" in line.get_label() and "runs" in line.get_label() for line in lines)
    assert list(joint[0].get_ydata()) == [pytest.approx(100 * JOINT_ACC)] * 2  # the seed-0 joint run of both


def test_find_joint_matches_data_split_seed_and_partition(tmp_path: Path) -> None:
    from spikecl.report.joint import JOINT, find_joint, joint_figures, same_setting, sibling_runs

    joint = add_joint(tmp_path / "sweep")
    run = make_run(tmp_path / "sweep" / "lr", split="progressive", depth=1, buffer=64, speaker=None, tasks=4)
    summary = read_completed_summary(run)
    ref = find_joint(summary, sibling_runs(run))
    assert ref is not None and ref.path.resolve() == joint.resolve()
    assert ref.gap == pytest.approx(JOINT_ACC - summary["acc_all"])
    assert ref.per_task_gap == pytest.approx([JOINT_ACC - 0.01 * t - 0.9 for t in range(5)])
    figures = joint_figures(summary, [tmp_path / "sweep"], exclude=run)
    assert figures["joint_acc_all"] == JOINT_ACC and figures["joint_run"] == str(joint)
    assert joint_figures({**summary, "seed": 1}, [tmp_path / "sweep"])["gap_to_joint"] is None
    assert joint_figures({**summary, "task_names": ["pretrain", "class 12"]}, [tmp_path])["joint_acc_all"] is None
    assert find_joint({**summary, "strategy": JOINT}, []).gap == 0.0  # a joint run is its own reference
    # The partition, when both configs record it (config.yaml, else .hydra/config.yaml).
    assert same_setting(summary, summary, {"dataset": {"test_fraction": 0.2}}, {"dataset": {"test_fraction": 0.2}})
    assert not same_setting(summary, summary, {"dataset": {"test_fraction": 0.2}}, {"dataset": {"test_fraction": 0.3}})
    assert same_setting(summary, summary, {"model": {"hidden": [3]}}, {"pretrain": {"lr": 1}})  # unknown: no veto
    assert same_setting(summary, summary, {"pretrain": {"lr": "${x}"}}, {"pretrain": {"lr": 0.1}})  # unresolved
    (joint / "config.yaml").write_text(yaml.safe_dump({"dataset": {"val_fraction": 0.0}}))
    assert find_joint(summary, [joint], config={"dataset": {"val_fraction": 0.1}}) is None
    assert find_joint(summary, [joint], config={"dataset": {"val_fraction": 0.0}}) is not None


def test_activity_columns_and_the_synops_figure(tmp_path: Path) -> None:
    for depth, ops in ((1, 2.0e6), (2, 1.5e6)):
        make_run(tmp_path / f"lr-d{depth}", depth=depth,
                 extra={"rate_l1": 0.02 * depth, "rate_l2": 0.01, "rate_l10": 0.5, "synops_inference": ops})
    make_run(tmp_path / "naive", strategy="naive", depth=None, buffer=0, extra={"synops_inference": 3.0e6})
    add_joint(tmp_path, split="sample_incremental", tasks=1, synops_inference=2.5e6)
    make_run(tmp_path / "unmeasured", depth=1, speaker=1)  # no activity figures: blank cells, no failure
    result = write_report([tmp_path])
    text = result.report_md.read_text()
    header = table_rows(text, "### sample_incremental")[0]
    assert [c for c in header if c.startswith(("rate_", "synops"))] == ["rate_l1", "rate_l2", "rate_l10",
                                                                      "synops_inference"]
    assert "| 1.5 M |" in text and "| 0.04 |" in text
    path = tmp_path / "plots" / "acc_vs_synops_sample_incremental.png"
    assert path in result.plots and path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 10_000

    fig, _ = figure(tmp_path, "acc_vs_synops_sample_incremental")
    synops_ax, memory_ax = fig.axes[:2]
    assert synops_ax.get_xscale() == "log"
    labels = {t.get_text() for t in synops_ax.get_legend().get_texts()}
    assert labels == {"latent_replay", "naive", "joint (upper bound)"}
    assert "joint (upper bound), of the same setting" in {t.get_text() for t in memory_ax.get_legend().get_texts()}


def test_synops_figure_is_skipped_without_the_key(sweep: Path) -> None:
    text = write_report([sweep]).report_md.read_text()
    note = "`acc_vs_synops_sample_incremental.png`: no synops_inference/acc_all in the sample_incremental summaries"
    assert note in text
    assert "rate_l1" not in text and "synops_inference |" not in text
