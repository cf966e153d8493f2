"""The report's figures never mislead (issue 17, items 11 and 12), on hand-made run folders whose answers are
known: one kind of data per figure, the grouping of the tables, joint lines of the same setting, the buffer as
stored, readable log axes; no report over nothing; damaged summaries flagged, never averaged in."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml
from matplotlib.backends.backend_agg import FigureCanvasAgg

from spikecl.report import find_run_folders, load_run, write_report
from spikecl.report.table import summary_frame
from tests.test_report import make_run, run_cli, table_rows

VAL, TEST = 0.111, 0.999  # every validation row, the test rows of a task's last epoch
EPOCHS = 3


def figure(root: Path, name: str, data: str = "test"):
    """The report's figure ``name`` for the runs below ``root`` (drawn, not written) and its notes."""
    from spikecl.report import plots

    runs = [load_run(p) for p in find_run_folders([root])]
    return plots.draw_figure(summary_frame(runs, root), runs, name, data)


def curves(ax) -> list:
    return [line for line in ax.lines if line.get_gid() != "joint" and line.get_label() != "pretrained"]


def write_metrics(folder: Path, tasks: int, *, test: float = TEST) -> None:
    """metrics.csv as a run with validation data writes it: val rows after every epoch, test rows after each
    task (the row of the last epoch), the pretrained model's test row as CL task 0; the val row of a task's last
    epoch comes after its test row, where sorting by epoch alone would take it."""
    rows = [("pretrain", 0, e, "val", "all", VAL) for e in range(1, EPOCHS + 1)]
    rows += [("cl", 0, 0, "test", "all", 0.45)]
    for task in range(1, tasks + 1):
        for epoch in range(1, EPOCHS + 1):
            if epoch == EPOCHS:
                rows.append(("cl", task, epoch, "test", "all", test - 0.01 * task))
            rows.append(("cl", task, epoch, "val", "all", VAL))
    frame = pd.DataFrame(rows, columns=["phase", "task", "epoch", "data", "subset", "accuracy"])
    frame.assign(loss=1.0, train_loss=1.0, seconds=0.1).to_csv(folder / "metrics.csv", index=False)


def set_config(folder: Path, **pretrain) -> None:
    """The resolved config.yaml a run writes, with the pretraining settings given (what joint runs match on)."""
    (folder / "config.yaml").write_text(yaml.safe_dump({"pretrain": pretrain, "seed": 0}))


# ---------------------------------------------------------------------------------------- one kind of data


def test_accuracy_vs_epoch_shows_test_rows_only_or_validation_rows_when_asked(tmp_path: Path) -> None:
    for speaker in (0, 1):
        write_metrics(make_run(tmp_path / f"speaker={speaker}", speaker=speaker), tasks=1)
    fig, _ = figure(tmp_path, "acc_vs_epoch_sample_incremental")
    [line] = curves(fig.axes[0])
    # the test rows: the pretrained model (epoch 0) and the end of the task; never a mean with a validation row
    assert list(line.get_xdata()) == [0, EPOCHS]
    assert list(line.get_ydata()) == [pytest.approx(45.0), pytest.approx(100 * (TEST - 0.01))]
    assert fig.axes[0].get_ylabel() == "test accuracy, all classes (%)"
    assert "test accuracy" in fig.get_suptitle()

    fig, _ = figure(tmp_path, "acc_vs_epoch_sample_incremental", data="val")
    [line] = curves(fig.axes[0])
    assert list(line.get_xdata()) == [1, 2, 3] and list(line.get_ydata()) == [pytest.approx(100 * VAL)] * 3
    assert fig.axes[0].get_ylabel() == "validation accuracy, all classes (%)"


def test_accuracy_after_each_learned_class_takes_each_task_s_test_row(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", split="progressive", depth=1, buffer=64, ratio=2, speaker=None, tasks=3)
    write_metrics(run, tasks=3)
    fig, _ = figure(tmp_path, "acc_vs_learned_classes_progressive")
    [line] = curves(fig.axes[0])
    assert list(line.get_xdata()) == [11, 12, 13]
    assert list(line.get_ydata()) == pytest.approx([100 * (TEST - 0.01 * t) for t in (1, 2, 3)])


def test_the_cli_draws_validation_figures_when_asked(tmp_path: Path) -> None:
    write_metrics(make_run(tmp_path / "runs" / "a"), tasks=1)
    proc = run_cli(str(tmp_path / "runs"), "--data", "val", "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "plots" / "acc_vs_epoch_sample_incremental.png").is_file()


# ---------------------------------------------------------------------------- the grouping of the tables


@pytest.fixture
def budgets(tmp_path: Path) -> Path:
    """Progressive runs that share strategy, depth, buffer and compression but not their budget: 300 epochs,
    2 epochs, 2 epochs with EWC; each with the joint run of its pretraining budget (300: 0.75, 2: 0.105)."""
    root = tmp_path / "sweep"
    common = {"buffer_size": 2432, "buffer_samples": 760}
    plain, ewc = ["readout", "replay"], ["readout", "replay", "ewc"]
    for name, epochs, plugins, acc in (("long", 300, plain, 0.705), ("short", 2, plain, 0.3), ("ewc", 2, ewc, 0.2)):
        run = make_run(root / name, split="progressive", depth=1, buffer=2432, ratio=2, speaker=None, tasks=3,
                       overrides=[f"pretrain.epochs={epochs}", f"strategy.epochs={epochs}"],
                       extra={**common, "epochs": epochs, "plugins": plugins, "acc_all": acc})  # fmt: skip
        write_metrics(run, tasks=3, test=acc + 0.1)
        set_config(run, epochs=epochs)
    for epochs, acc in ((300, 0.75), (2, 0.105)):
        joint = make_run(root / f"joint{epochs}", split="progressive", strategy="joint", depth=None, buffer=0,
                         speaker=None, tasks=3, overrides=[f"pretrain.epochs={epochs}", "strategy=joint"],
                         extra={"acc_all": acc, "epochs": 0, "plugins": ["joint"], "buffer_samples": 0,
                                "buffer_bytes": 0, "buffer_bytes_1bit": 0})  # fmt: skip
        set_config(joint, epochs=epochs)
    return root


def test_a_line_is_a_table_row_and_its_joint_line_bounds_the_same_setting(budgets: Path) -> None:
    fig, notes = figure(budgets, "acc_vs_learned_classes_progressive")
    lines = [line for ax in fig.axes for line in curves(ax)]
    labels = sorted(line.get_label() for line in lines)
    assert len(lines) == 3 and all(label.endswith("(1 runs)") for label in labels), labels  # never merged
    assert all("buffer 760" in label and "2432" not in label for label in labels)  # as stored
    table = table_rows(write_report([budgets]).report_md.read_text(), "### progressive")
    assert len(table) - 2 == 3 + 2  # the same three rows, and a joint row per pretraining budget

    by_final = {round(line.get_ydata()[-1], 1): line for line in lines}  # the last task's test row: acc + 0.07
    joint = {round(line.get_ydata()[0], 1): line for ax in fig.axes for line in ax.lines if line.get_gid() == "joint"}
    assert set(joint) == {75.0, 10.5}
    long_run = by_final[round(100 * (0.705 + 0.07), 1)]
    assert joint[75.0].get_color() == long_run.get_color()  # the 300-epoch run's bound: the 300-epoch joint run
    assert joint[10.5].get_color() != long_run.get_color()
    assert not notes


def test_a_setting_without_a_joint_run_for_every_run_gets_no_joint_line(budgets: Path) -> None:
    other = make_run(budgets / "long-seed1", split="progressive", depth=1, buffer=2432, ratio=2, speaker=None,
                     tasks=3, seed=1, overrides=["pretrain.epochs=300", "strategy.epochs=300"],
                     extra={"buffer_samples": 760, "epochs": 300, "plugins": ["readout", "replay"], "acc_all": 0.7})
    write_metrics(other, tasks=3)
    set_config(other, epochs=300)
    fig, notes = figure(budgets, "acc_vs_learned_classes_progressive")
    joint = {round(line.get_ydata()[0], 1) for ax in fig.axes for line in ax.lines if line.get_gid() == "joint"}
    assert joint == {10.5}  # seed 1 has no joint run: the 300-epoch setting has no bound, not seed 0's
    assert any(note.startswith("no joint line for") and "300 epochs" in note for note in notes), notes


# ------------------------------------------------------------------------------------------ a readable axis


def overlapping_labels(fig) -> list[tuple[str, str]]:
    """Pairs of x tick labels of one axis whose boxes overlap once drawn."""
    FigureCanvasAgg(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    pairs = []
    for ax in fig.axes:
        labels = [t for t in ax.get_xticklabels() if t.get_visible() and t.get_text()]
        boxes = [t.get_window_extent(renderer) for t in labels]
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                if boxes[i].x0 < boxes[j].x1 and boxes[j].x0 < boxes[i].x1:
                    pairs.append((labels[i].get_text(), labels[j].get_text()))
    return pairs


@pytest.mark.parametrize("low, high", [(64_000, 2_560_000), (1_100_000, 2_600_000)])
def test_memory_axis_labels_do_not_overlap(tmp_path: Path, low: int, high: int) -> None:
    # 1.6 decades of bytes; and 0.37 (one buffer, a few ratios), where matplotlib labels every 0.2 MB, overlapping
    for i, ratio in enumerate((1, 2, 4, 5, 10, 20)):
        stored = int(high * (low / high) ** (i / 5))
        make_run(tmp_path / f"r{ratio}", depth=1, buffer=640, ratio=ratio, speaker=0,
                 extra={"buffer_bytes": stored, "buffer_bytes_1bit": int(0.8 * stored)})
    fig, _ = figure(tmp_path, "acc_vs_memory_sample_incremental")
    assert all(len([t for t in ax.get_xticklabels() if t.get_text()]) >= 3 for ax in fig.axes[:2])
    assert not overlapping_labels(fig)


# ------------------------------------------------------------------------------- nothing, and broken summaries


def test_a_report_over_no_runs_writes_nothing_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("not a run")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    result = write_report([tmp_path])
    assert result.report_md is None and result.summary_csv is None and result.plots == []
    proc = run_cli(str(tmp_path))
    assert proc.returncode == 1 and "wrote" not in proc.stdout
    assert "no run folders" in proc.stderr and "nothing written" in proc.stderr
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("damage, reason", [
    ({"acc_all": "n/a"}, "acc_all is 'n/a', not a number"),
    ({"acc_all": None}, "acc_all is missing"),
    ({"acc_all": math.nan}, "acc_all is nan, not a finite number"),
    ({"bwt": "oops"}, "bwt is 'oops', not a number"),
])  # fmt: skip
def test_a_completed_summary_with_a_broken_figure_is_flagged_never_averaged(tmp_path: Path, damage, reason) -> None:
    make_run(tmp_path / "good", speaker=0)
    bad = make_run(tmp_path / "bad", speaker=1)
    summary = {**json.loads((bad / "summary.json").read_text()), **damage}
    if damage.get("acc_all", 0) is None:
        del summary["acc_all"]
    (bad / "summary.json").write_text(json.dumps(summary))
    result = write_report([tmp_path])
    text = result.report_md.read_text()
    assert f"- `bad`: summary.json says completed but {reason}; not averaged in" in text
    header, *_, row = table_rows(text, "### sample_incremental")
    assert row[header.index("runs")] == "1"  # the good run alone
    assert result.completed == 1 and result.incomplete == [(tmp_path / "bad").resolve()]


# ---------------------------------------------------------------------- which figure: the per_task flag


@pytest.mark.parametrize("split, flag, names, figure_name", [
    ("progressive", False, None, "acc_vs_epoch_progressive"),  # the flag wins over the split's name
    ("custom", True, None, "acc_vs_learned_classes_custom"),
    ("custom", None, ["pretrain", "a", "b"], "acc_vs_learned_classes_custom"),  # 0.2: more than two task names
    ("custom", None, ["pretrain", "a"], "acc_vs_epoch_custom"),
])  # fmt: skip
def test_the_per_task_flag_chooses_the_figure(tmp_path: Path, split, flag, names, figure_name) -> None:
    extra = {"split": split}
    if flag is not None:
        extra["per_task"] = flag
    if names is not None:
        extra["task_names"] = names
    run = make_run(tmp_path / "run", split="class_incremental", new_class=3, extra=extra, tasks=2)
    write_metrics(run, tasks=2)
    names_drawn = {p.stem for p in write_report([tmp_path]).plots}
    assert figure_name in names_drawn
    other = "acc_vs_epoch" if "learned" in figure_name else "acc_vs_learned_classes"
    assert not any(n.startswith(other) for n in names_drawn)
