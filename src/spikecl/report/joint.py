"""How far a run is from joint training, the upper bound (``strategy=joint``), when a joint run is known.

:func:`find_joint` looks through candidate run folders (a sweep's other jobs, a user-given folder) for a
completed joint run of the *same setting*: the same data set, protocol, split (its name, held-out speaker
or new class, and task names, which fix the class order), seed and, when both runs record their config,
the same partition fractions and binning, model, pretraining schedule and loss. Its figures say how the run
compares: ``joint_acc_all`` (the joint model's accuracy on all test data), ``gap_to_joint``
(``joint_acc_all - acc_all``: positive when the run is below the bound) and the same per task from the last
rows of the two accuracy matrices. A joint run's reference is itself (gap 0).

Standard library and PyYAML only, as :mod:`spikecl.report.runs`. At run time::

    from spikecl.report.joint import joint_figures, sibling_runs
    summary.update(joint_figures(summary, sibling_runs(folder), config=resolved_config, exclude=folder))
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from spikecl.report.runs import RunFolder, finite_number, is_run_folder, read_completed_summary

JOINT = "joint"  # summary.json's "strategy" of a joint run (conf/strategy/joint.yaml)
# summary.json fields that must be equal (when both runs have them).
SUMMARY_KEYS = ("dataset", "protocol", "split", "speaker", "new_class", "seed", "task_names")
# Config entries that must be equal when both runs record them (a missing entry does not separate runs).
CONFIG_KEYS = ("dataset.test_fraction", "dataset.val_fraction", "dataset.nb_steps", "dataset.max_time",
               "dataset.nb_units", "dataset.protocol", "split.old_classes", "split.new_classes", "model",
               "pretrain.epochs", "pretrain.lr", "pretrain.batch_size", "loss")


@dataclass
class JointReference:
    """A matching joint run and how the run compares with it."""

    path: Path | None            # the joint run's folder (None when given as a bare summary)
    acc_all: float               # the joint model's accuracy on all test data
    gap: float | None            # joint acc_all - the run's acc_all (None when the run has no acc_all)
    per_task: list[float | None] | None  # the joint model's accuracy per task (last accuracy-matrix row)
    per_task_gap: list[float | None] | None  # joint minus the run, per task

    def figures(self) -> dict[str, Any]:
        """What summary.json records: ``joint_acc_all``, ``gap_to_joint``, ``gap_to_joint_per_task``, ``joint_run``."""
        return {"joint_acc_all": self.acc_all, "gap_to_joint": self.gap, "gap_to_joint_per_task": self.per_task_gap,
                "joint_run": None if self.path is None else str(self.path)}


NO_JOINT = {"joint_acc_all": None, "gap_to_joint": None, "gap_to_joint_per_task": None, "joint_run": None}


def is_joint(summary: Mapping[str, Any] | None) -> bool:
    """Whether a summary is a joint-training run's."""
    return bool(summary) and summary.get("strategy") == JOINT


def same_setting(a: Mapping[str, Any], b: Mapping[str, Any], config_a: Mapping[str, Any] | None = None,
                 config_b: Mapping[str, Any] | None = None) -> bool:
    """Whether two runs' summaries (and, when given, configs) describe the same data, split, seed and
    partition: every key of :data:`SUMMARY_KEYS` and :data:`CONFIG_KEYS` that both record is equal."""
    for key in SUMMARY_KEYS:
        if key in a and key in b and not _equal(a[key], b[key]):
            return False
    if config_a and config_b:
        for key in CONFIG_KEYS:
            va, vb = _get(config_a, key), _get(config_b, key)
            if va is not _MISSING and vb is not _MISSING and not _equal(va, vb):
                return False
    return True


@dataclass
class Candidate:
    """A completed run that may serve as the reference: its folder, summary and config (None if unknown)."""

    path: Path
    summary: dict[str, Any]
    config: dict[str, Any] | None = None


def find_joint(summary: Mapping[str, Any], candidates: Iterable[str | os.PathLike[str] | RunFolder | Candidate], *,
               config: Mapping[str, Any] | None = None,
               exclude: str | os.PathLike[str] | None = None) -> JointReference | None:
    """The first completed joint run among ``candidates`` (run folders, in their order; sweep folders are
    searched below; :func:`joint_candidates` reads them once for many look-ups) of the same setting as the
    run with ``summary`` and resolved ``config`` (e.g. its config.yaml), compared with it; None when there is
    none. ``exclude``: the run's own folder."""
    excluded = Path(exclude).resolve() if exclude is not None else None
    if is_joint(summary):
        return compare(summary, summary, None)
    for cand in _candidates(candidates):
        if excluded is not None and cand.path.resolve() == excluded:
            continue
        if is_joint(cand.summary) and same_setting(summary, cand.summary, config, cand.config):
            return compare(summary, cand.summary, cand.path)
    return None


def joint_candidates(items: Iterable[str | os.PathLike[str] | RunFolder | Candidate]) -> list[Candidate]:
    """The completed joint runs among ``items``, read once (folders, summaries and configs)."""
    return [c for c in _candidates(items) if is_joint(c.summary)]


def joint_figures(summary: Mapping[str, Any], candidates: Iterable[str | os.PathLike[str] | RunFolder], *,
                  config: Mapping[str, Any] | None = None,
                  exclude: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """:meth:`JointReference.figures` of :func:`find_joint`, or the same keys set to None when no joint run
    of the setting is known."""
    ref = find_joint(summary, candidates, config=config, exclude=exclude)
    return dict(NO_JOINT) if ref is None else ref.figures()


def compare(summary: Mapping[str, Any], joint: Mapping[str, Any], path: Path | None) -> JointReference:
    """A run's summary against a joint run's summary."""
    acc, joint_acc = finite_number(summary.get("acc_all")), float(joint["acc_all"])
    per_task = _last_row(joint)
    mine = _last_row(summary)
    gaps = None
    if per_task is not None and mine is not None and len(per_task) == len(mine):
        gaps = [None if j is None or m is None else j - m for j, m in zip(per_task, mine)]
    return JointReference(path, joint_acc, None if acc is None else joint_acc - acc, per_task, gaps)


def sibling_runs(run_dir: str | os.PathLike[str]) -> list[Path]:
    """The run folders below ``run_dir``'s parent (a multirun's other jobs, a day's other runs), without it."""
    run_dir = Path(run_dir).resolve()
    return [p for p in run_folders(run_dir.parent) if p != run_dir]


def run_folders(root: str | os.PathLike[str]) -> list[Path]:
    """Every folder at or below ``root`` holding a run: Hydra's records or a summary.json (runs made with
    :class:`~spikecl.experiment.Experiment` outside Hydra have no ``.hydra``); hidden folders are skipped."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if "summary.json" in filenames or is_run_folder(dirpath):
            found.append(Path(dirpath).resolve())
    return sorted(found)


# ------------------------------------------------------------------------------------------- helpers

_MISSING = object()


def _candidates(items: Iterable[str | os.PathLike[str] | RunFolder | Candidate]):
    """Every completed run among ``items`` as a :class:`Candidate`, each folder once."""
    seen: set[Path] = set()
    for item in items:
        if isinstance(item, Candidate):
            runs: list[Any] = [item]
        elif isinstance(item, RunFolder):
            runs = [item]
        elif (Path(item) / "summary.json").is_file():  # a run folder, with or without Hydra's records
            runs = [Path(item)]
        elif Path(item).is_dir():
            runs = run_folders(item)
        else:
            continue
        for run in runs:
            folder = run.path if isinstance(run, (RunFolder, Candidate)) else Path(run)
            if folder.resolve() in seen:
                continue
            seen.add(folder.resolve())
            if isinstance(run, Candidate):
                yield run
                continue
            summary = run.summary if isinstance(run, RunFolder) else read_completed_summary(folder)
            if summary is not None:
                yield Candidate(folder, summary, _config(folder, run if isinstance(run, RunFolder) else None))


def run_config(run: RunFolder) -> dict[str, Any] | None:
    """A run folder's resolved config.yaml, else its .hydra/config.yaml (for :func:`find_joint`'s ``config``)."""
    return _config(run.path, run)


def _config(folder: Path, run: RunFolder | None) -> dict[str, Any] | None:
    """The run's resolved config.yaml (every run writes it), else Hydra's .hydra/config.yaml."""
    for path in (folder / "config.yaml", folder / ".hydra" / "config.yaml"):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, dict):
            return data
    return run.config if run is not None and run.config else None


def _get(config: Mapping[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _unresolved(value: Any) -> bool:
    """An interpolation left in .hydra/config.yaml (``${pretrain.lr}``): it cannot be compared."""
    return isinstance(value, str) and "${" in value


def _equal(a: Any, b: Any) -> bool:
    """Equal values; entries that either side left unresolved (``${...}``) are not compared."""
    if _unresolved(a) or _unresolved(b):
        return True
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return all(_equal(a.get(k), b.get(k)) for k in set(a) | set(b))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b


def _last_row(summary: Mapping[str, Any]) -> list[float] | None:
    matrix = summary.get("accuracy_matrix")
    if not isinstance(matrix, list) or not matrix or not isinstance(matrix[-1], list):
        return None
    return [finite_number(v) for v in matrix[-1]]
