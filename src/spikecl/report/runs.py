"""Finding and reading run folders: the files Hydra and :func:`spikecl.run.run` leave in every run.

A run folder is any folder holding ``.hydra/config.yaml``. It is *completed* when its ``summary.json`` has
``"status": "completed"`` and its figures are numbers (:data:`REQUIRED_FIGURES` present, every one of
:data:`FIGURES` that is there a number or null); anything else (no summary yet, a crashed job, an
unreadable file, a damaged or hand-edited summary) makes it incomplete, with the reason. This module only
uses the standard library and PyYAML, so the sweeper can call it cheaply.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SUMMARY_FILE = "summary.json"
METRICS_FILE = "metrics.csv"
COMPLETED = "completed"
# The figure every completed summary has and every report averages, and the others reports average when a
# summary has them.
REQUIRED_FIGURES = ("acc_all",)
FIGURES = REQUIRED_FIGURES + ("acc_old", "acc_old_before", "forgetting", "acc_new", "acc_new_before",
                              "acc_new_mean", "bwt", "val_acc_all", "gap_to_joint",
                              "joint_acc_all", "buffer_samples", "buffer_bytes", "buffer_bytes_1bit",
                              "synops_inference")


@dataclass
class RunFolder:
    """One run folder: what Hydra recorded about it and, when completed, its summary."""

    path: Path
    choices: dict[str, str] = field(default_factory=dict)  # hydra.runtime.choices (group -> option)
    overrides: list[str] = field(default_factory=list)  # .hydra/overrides.yaml
    config: dict[str, Any] = field(default_factory=dict)  # .hydra/config.yaml (unresolved)
    summary: dict[str, Any] | None = None  # the completed summary.json, else None
    problem: str | None = None  # why the run counts as incomplete

    @property
    def completed(self) -> bool:
        return self.summary is not None


def read_completed_summary(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The run's summary.json when it says ``"status": "completed"``, else None (missing, partial, failed)."""
    summary, _ = _read_summary(Path(run_dir))
    return summary


def is_run_folder(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` holds a Hydra run (``.hydra/config.yaml``)."""
    return (Path(path) / ".hydra" / "config.yaml").is_file()


def find_run_folders(roots: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Every run folder at or below each root (any depth), sorted and without duplicates.

    Hidden folders (``.hydra``, ``.submitit``) are not searched. Raises FileNotFoundError for a missing root.
    """
    found: set[Path] = set()
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"{root} is not a folder: pass run folders or sweep folders")
        for dirpath, dirnames, _ in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            if is_run_folder(dirpath):
                found.add(Path(dirpath).resolve())
    return sorted(found)


def load_run(path: str | os.PathLike[str]) -> RunFolder:
    """Read a run folder's Hydra records and summary; problems are recorded, never raised."""
    path = Path(path)
    run = RunFolder(path=path)
    hydra_dir = path / ".hydra"
    try:
        hydra_cfg = _load_yaml(hydra_dir / "hydra.yaml", default={})
        choices = ((hydra_cfg.get("hydra") or {}).get("runtime") or {}).get("choices") or {}
        run.choices = {str(k): "" if v is None else str(v) for k, v in choices.items()}
        run.overrides = [str(o) for o in _load_yaml(hydra_dir / "overrides.yaml", default=[])]
        run.config = _load_yaml(hydra_dir / "config.yaml")
    except (OSError, yaml.YAMLError, AttributeError) as err:
        run.problem = f"unreadable .hydra records: {err}"
        return run
    run.summary, run.problem = _read_summary(path)
    return run


def _read_summary(run_dir: Path) -> tuple[dict[str, Any] | None, str | None]:
    path = run_dir / SUMMARY_FILE
    if not path.is_file():
        return None, f"no {SUMMARY_FILE} (unfinished or failed)"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        return None, f"unreadable {SUMMARY_FILE}: {err}"
    if not isinstance(data, dict):
        return None, f"{SUMMARY_FILE} is not a JSON object"
    if data.get("status") != COMPLETED:
        return None, f"{SUMMARY_FILE} status is {data.get('status')!r}, not {COMPLETED!r}"
    broken = _broken_figures(data)
    if broken:
        return None, f"{SUMMARY_FILE} says completed but {broken}; not averaged in (rerun the run to rewrite it)"
    return data, None


def _broken_figures(summary: dict[str, Any]) -> str | None:
    """What is wrong with the figures of a completed summary, or None: a required figure missing or not a
    finite number, another figure neither a number nor null."""
    missing = [k for k in REQUIRED_FIGURES if k not in summary or summary[k] is None]
    if missing:
        return f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing"
    for key in FIGURES:
        value = summary.get(key)
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if value is not None and not number:
            return f"{key} is {value!r}, not a number"
        if key in REQUIRED_FIGURES and not math.isfinite(value):
            return f"{key} is {value!r}, not a finite number"
    return None


def finite_number(value: Any) -> float | None:
    """``value`` as a float when it is a finite number (or a string of one), else None."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _load_yaml(path: Path, default: Any = None) -> Any:
    """Parse a YAML file; a missing file gives ``default`` when one is given (else OSError)."""
    if default is not None and not path.is_file():
        return default
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if data is None:
        return {} if default is None else default
    return data
