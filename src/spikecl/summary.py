"""A run's summary: every figure of ``summary.json``, assembled from what each part reports, and its log lines.

The experiment hands over what its parts report: the split's settings (:meth:`Split.figures`), every plugin's
figures (:meth:`Plugin.figures`: the replay buffer's size and compression, say), the evaluator's matrices and
activity, the timings and the provenance. The derived figures (forgetting, backward and forward transfer,
the validation counterparts used for tuning) are computed here, once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from spikecl.cl.metrics import matrix_metrics
from spikecl.data import Task
from spikecl.evaluation import Evaluator


def summary(*, head: Mapping[str, Any], evaluator: Evaluator, tasks: Sequence[Task],
            sections: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``summary.json``: ``head`` (what ran: data set, strategy, settings), the accuracies before and after
    from ``evaluator``, then every mapping of ``sections`` (split, plugins, timings, provenance) in order."""
    matrix = np.array(evaluator.matrix)
    before, after = evaluator.before, evaluator.after
    new_test = np.concatenate([t.test for t in tasks[1:]])
    acc_old_before, acc_old = matrix[0, 0], matrix[-1, 0]
    out: dict[str, Any] = {
        "status": "completed",
        **head,
        "acc_old_before": acc_old_before,
        "acc_new_before": before.accuracy(before.subset(new_test)),
        "acc_old": acc_old,
        "acc_new": after.accuracy(after.subset(new_test)),
        "acc_all": after.accuracy(),
        "forgetting": acc_old_before - acc_old,
        **(evaluator.activity[-1] if evaluator.activity else {}),
        "activity_per_task": evaluator.activity,
        "activity_seconds": evaluator.activity_seconds,
        "pretrain_test_accuracy": acc_old_before,
        "initial_accuracy": evaluator.initial,
        "accuracy_matrix": matrix.tolist(),
        **matrix_metrics(matrix, np.array(evaluator.initial) if evaluator.initial else None),
        **val_figures(evaluator.val_matrix, tasks),
        "task_names": [t.name for t in tasks],
    }
    for section in sections:
        out.update(section)
    return {k: (float(v) if isinstance(v, np.floating) else v) for k, v in out.items()}


def val_figures(val_matrix: list[list[float]], tasks: Sequence[Task]) -> dict[str, Any]:
    """The validation counterparts of the test figures (what tuning compares): ``val_acc_all`` (accuracy on
    every task's validation part at the end, pooled), ``val_accuracy_matrix``, ``val_acc_new_mean``, ``val_bwt``."""
    if not val_matrix:
        return {"val_acc_all": None}
    matrix = np.array(val_matrix)
    sizes = np.array([len(t.val) for t in tasks])
    derived = matrix_metrics(matrix)
    return {"val_acc_all": float(np.nansum(matrix[-1] * sizes) / sizes.sum()), "val_accuracy_matrix": matrix.tolist(),
            "val_acc_new_mean": derived["acc_new_mean"], "val_bwt": derived["bwt"]}


def human_summary(s: Mapping[str, Any]) -> list[str]:
    """The lines the log ends with: accuracies before and after, the distance to joint training, memory."""
    lines = [
        f"summary ({s['dataset']}, {s['split']}, {s['strategy']}"
        + (f", depth {s['latent_depth']}" if s["latent_depth"] is not None else "")
        + (f", compression 1:{s['compression_ratio']} {s['codec']}" if s.get("compression_ratio") else "") + ")",
        f"  old classes: {s['acc_old_before']:.3f} before -> {s['acc_old']:.3f} after (forgetting {s['forgetting']:+.3f})",
        f"  new data: {s['acc_new_before']:.3f} before -> {s['acc_new']:.3f} after; mean accuracy on each new task "
        f"right after learning it: {s['acc_new_mean']:.3f}",
        f"  final accuracy on all test data: {s['acc_all']:.3f}"
        + (f" (validation: {s['val_acc_all']:.3f})" if s.get("val_acc_all") is not None else ""),
    ]
    if s.get("gap_to_joint") is not None and s["strategy"] != "joint":
        gap = s["gap_to_joint"]
        lines.append(f"  joint training (upper bound): {s['joint_acc_all']:.3f} on all test data, "
                     f"{abs(gap):.3f} {'above' if gap >= 0 else 'below'} this run")
    if s.get("buffer_samples"):
        lines.append(f"  replay memory: {s['buffer_samples']} samples in {s['buffer_bytes']:,} bytes as stored "
                     f"({s['buffer_bytes_1bit']:,.0f} bytes in the paper's accounting, {s['bits_per_entry']} bit"
                     f"{'s' if s['bits_per_entry'] > 1 else ''} per stored value); raw rehearsal of the same samples "
                     f"at 1 bit per input value: {s['raw_rehearsal_bytes_1bit']:,.0f} bytes")
    return lines
