"""Searches with Optuna (``hydra/sweeper=optuna``, ``sweep=tune_progressive``): checks before, then the best
settings' test run and the search's report.

How a search meets spikecl (README, "Tuning with Optuna"):

- Every trial is an ordinary spikecl job in ``<sweep>/<its settings>/`` (folder names as in any sweep:
  the searched keys, from ``hydra.sweeper.params`` or the command line) and returns ``val_acc_all``
  (:func:`spikecl.cli.main`): the search only ever compares validation figures.
- Resuming needs no stored study. With a seeded sampler, a rerun of the same command proposes the same
  settings in the same order as long as the trials return the same values, and they do: a trial whose folder
  holds a completed run of the same fingerprint returns its stored ``val_acc_all`` without training
  (:func:`spikecl.run.run`), a killed one resumes from its checkpoint. A larger ``hydra.sweeper.n_trials``
  replays the finished trials and goes on. A stored study (``hydra.sweeper.storage``) would instead add
  ``n_trials`` new trials on every rerun; :class:`SearchCallback` warns about it and about an unseeded sampler.
- At the end (:func:`finish_search`): the best trial by ``val_acc_all`` (ties: the earliest, as Optuna's
  ``best_trial``), then one run of its settings in ``<sweep>/best/``, fingerprinted like every run (a rerun
  reuses it), whose **test** figures are the search's result; the trials' own test figures are never read.
  ``report.md`` names the best settings, then those test figures, then every trial with validation figures
  only; ``trials.csv`` holds the same trials.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from spikecl.callbacks import log_failure
from spikecl.report.runs import read_completed_summary
from spikecl.sweeps import OPTUNA_TARGET, split_override, swept_keys
from spikecl.utils.atomic import write_text

log = logging.getLogger(__name__)

OBJECTIVE = "val_acc_all"  # what spikecl.cli.main returns: the figure a search maximises
BEST_DIR = "best"  # <sweep>/best/: the one run of the best settings, the search's test figures
REPORT = "report.md"
TRIALS_CSV = "trials.csv"
# Validation figures shown for every trial; test figures shown for the best settings' run only.
VALIDATION_FIGURES = ("val_acc_all", "val_acc_new_mean", "val_bwt")
TEST_FIGURES = (
    ("acc_all", "final accuracy on all test data"),
    ("acc_old", "old classes (pretraining task) at the end"),
    ("acc_new_mean", "each new task right after learning it (mean)"),
    ("bwt", "backward transfer"),
    ("forgetting", "forgetting of the old classes"),
    ("gap_to_joint", "gap to joint training"),
)


@dataclass
class Trial:
    """One trial of a search, read back from its run folder."""

    num: int  # Hydra's job number: Optuna's trial number
    folder: Path
    params: dict[str, str]  # the searched keys' values, as the trial's overrides give them
    overrides: list[str]  # every override the trial ran with (what the best run repeats)
    summary: dict[str, Any] | None = field(default=None, repr=False)  # completed summary.json, else None

    @property
    def value(self) -> float | None:
        """The trial's objective (``val_acc_all``), None when it has none (failed, unfinished)."""
        value = (self.summary or {}).get(OBJECTIVE)
        return None if value is None or not math.isfinite(value) else float(value)


class SearchCallback(Callback):
    """Hydra callback for Optuna searches (``conf/config.yaml``); does nothing under other sweepers.

    Before: refuses a search that would minimise spikecl's validation accuracy, warns when a rerun could not
    resume it (unseeded sampler, stored study). After: :func:`finish_search`, unless ``best_run`` is false
    (``hydra.callbacks.search.best_run=false``: the report then has no test figures).
    """

    def __init__(self, best_run: bool = True) -> None:
        self.best_run = best_run

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not is_optuna(config):
            return
        if OmegaConf.select(config, "hydra.sweeper.sampler.seed") is None:
            log.warning("hydra.sweeper.sampler.seed is not set: a rerun of this search samples other settings and "
                        "cannot reuse its finished trials; set hydra.sweeper.sampler.seed=0")
        if OmegaConf.select(config, "hydra.sweeper.storage") is not None:
            log.warning("hydra.sweeper.storage is set: a rerun adds hydra.sweeper.n_trials new trials to the stored "
                        "study instead of resuming this search; spikecl resumes without a storage (its trials' "
                        "fingerprints), so leave it null")
        problem = direction_problem(OmegaConf.select(config, "hydra.sweeper.direction"))
        if problem:
            # Hydra turns a callback's exception into a warning and goes on; SystemExit is not an Exception.
            raise SystemExit(problem)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if not is_optuna(config):
            return
        if not finish_search(config, best_run=self.best_run):
            raise SystemExit(f"the run of the best settings failed (see above and {config.hydra.sweep.dir}/{REPORT}); "
                             "rerun the same command to retry it")


def is_optuna(config: DictConfig) -> bool:
    """Whether ``config`` is a multirun of the Optuna sweeper."""
    return OmegaConf.select(config, "hydra.sweeper._target_") == OPTUNA_TARGET


def direction_problem(direction: Any) -> str | None:
    """Why an Optuna ``direction`` does not fit spikecl's objective (one line), or None when it is maximize."""
    name = getattr(direction, "name", direction)  # an enum in the sweeper's defaults, a string from YAML
    if isinstance(name, str) and name == "maximize":
        return None
    return (f"hydra.sweeper.direction={name} is not valid; spikecl's jobs return one figure to maximise, "
            f"the validation accuracy {OBJECTIVE}: set hydra.sweeper.direction=maximize")


def finish_search(config: DictConfig, best_run: bool = True) -> bool:
    """Pick the best trial of the search ``config`` describes, run its settings once in ``<sweep>/best/``
    (unless ``best_run`` is false) and write ``report.md`` and ``trials.csv``. Returns False when the best
    settings' run failed (the report says so), True otherwise."""
    sweep_dir = Path(str(config.hydra.sweep.dir))
    task = [str(o) for o in config.hydra.overrides.task]
    params = OmegaConf.to_container(config.hydra.sweeper.params) if config.hydra.sweeper.get("params") else None
    searched = swept_keys(task, params)
    trials = read_trials(sweep_dir, searched, int(config.hydra.sweeper.n_trials))
    best = best_trial(trials)
    best_summary, error = None, None
    if best is not None and best_run:
        log.info("best trial #%d by %s (%.4f); its test figures come from one run of its settings in %s",
                 best.num, OBJECTIVE, best.value, sweep_dir / BEST_DIR)
        try:
            best_summary = run_settings(config, best.overrides, sweep_dir / BEST_DIR)
        except Exception as err:  # the report is still written, naming the failure
            log_failure(log, "the run of the best settings failed", err)
            error = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    sampler = OmegaConf.select(config, "hydra.sweeper.sampler._target_") or "?"
    seed = OmegaConf.select(config, "hydra.sweeper.sampler.seed")
    text = search_report(trials, searched, best, best_summary, sampler=f"{sampler.rsplit('.', 1)[-1]}, seed {seed}",
                         error=error, best_run=best_run)
    write_text(sweep_dir / REPORT, text)
    write_text(sweep_dir / TRIALS_CSV, trials_csv(trials, searched))
    log.info("search report: %s", sweep_dir / REPORT)
    return error is None


def read_trials(sweep_dir: Path, searched: Sequence[str], n_trials: int) -> list[Trial]:
    """The trials of the last search in ``sweep_dir``, by number: its run folders (not ``best/``) of job
    numbers below ``n_trials``, and of two folders of one number the one launched last. Folders left by an
    earlier search in the same folder are not trials of this one: one of a longer search has a larger number,
    one whose settings this search did not propose again (other code, other results, other proposals) an
    older launch (Hydra rewrites ``.hydra/`` whenever it launches a job, also one that then skips itself)."""
    latest: dict[int, tuple[int, Trial]] = {}
    for folder in sorted(p for p in sweep_dir.iterdir() if p.is_dir() and p.name != BEST_DIR):
        records = folder / ".hydra"
        try:
            overrides = [str(o) for o in yaml.safe_load((records / "overrides.yaml").read_text()) or []]
            num = int(yaml.safe_load((records / "hydra.yaml").read_text())["hydra"]["job"]["num"])
            launched = (records / "overrides.yaml").stat().st_mtime_ns
        except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError):
            continue  # not a run folder (plots/, a half-written one)
        if num >= n_trials or (num in latest and latest[num][0] >= launched):
            continue
        values = dict(split_override(o) for o in overrides)
        latest[num] = (launched, Trial(num, folder, {k: values[k] for k in searched if k in values}, overrides,
                                       read_completed_summary(folder)))
    return [trial for _, (_, trial) in sorted(latest.items())]


def best_trial(trials: Sequence[Trial]) -> Trial | None:
    """The trial of the highest ``val_acc_all``, the earliest of equals; None when no trial has one."""
    scored = [t for t in trials if t.value is not None]
    return max(scored, key=lambda t: (t.value, -t.num)) if scored else None


def run_settings(config: DictConfig, overrides: Sequence[str], folder: Path) -> dict[str, Any]:
    """Run a job of the multirun ``config`` with ``overrides`` in ``folder`` in this process, composed as the
    launcher composes a trial's (so the same settings give the same fingerprint); returns its summary. A folder
    that holds a completed run of the same fingerprint is reused."""
    from hydra.core.global_hydra import GlobalHydra

    from spikecl.run import run
    from spikecl.utils.atomic import write_with

    cfg = GlobalHydra.instance().config_loader().load_sweep_config(config, list(overrides))
    hydra_node = cfg.hydra
    with read_write(cfg), open_dict(cfg):  # as Hydra's run_job: the job sees no hydra node
        del cfg["hydra"]
    # Hydra's records, so that spikecl.report reads the folder as any run.
    records = folder / ".hydra"
    records.mkdir(parents=True, exist_ok=True)
    write_with(records / "config.yaml", lambda tmp: OmegaConf.save(cfg, tmp))
    write_with(records / "hydra.yaml", lambda tmp: OmegaConf.save(OmegaConf.create({"hydra": hydra_node}), tmp))
    write_text(records / "overrides.yaml", yaml.safe_dump(list(overrides), sort_keys=False))
    return run(cfg, folder)


def search_report(trials: Sequence[Trial], searched: Sequence[str], best: Trial | None,
                  best_summary: Mapping[str, Any] | None, sampler: str, error: str | None = None,
                  best_run: bool = True) -> str:
    """``report.md`` of a search: the best settings (by validation), their test figures (from ``best/``
    only), then every trial with validation figures only."""
    completed = sum(t.value is not None for t in trials)
    lines = [
        "# Search report",
        "",
        f"Optuna ({sampler}): {len(trials)} trials, {completed} completed, {len(trials) - completed} failed or "
        f"unfinished. Searched: {', '.join(f'`{k}`' for k in searched) or 'nothing'}. Trials are compared on "
        f"`{OBJECTIVE}` (final validation accuracy on every task), never on test data.",
        "",
        "## Best settings (chosen on validation data)",
        "",
    ]
    if best is None:
        lines += ["No trial completed: nothing to choose.", ""]
    else:
        settings = ", ".join(f"`{k}={v}`" for k, v in best.params.items()) or "the defaults"
        lines += [f"Trial #{best.num} (`{best.folder.name}`): {settings}; {OBJECTIVE} {best.value:.4f}.", ""]
    lines += ["## Test figures of the best settings", ""]
    if best is None:
        lines += ["None.", ""]
    elif not best_run:
        lines += ["Not measured (hydra.callbacks.search.best_run=false).", ""]
    elif best_summary is None:
        lines += [f"The run of the best settings in `{BEST_DIR}/` failed: {error}. Rerun the same command.", ""]
    else:
        same = (best.summary or {}).get("fingerprint") == best_summary.get("fingerprint")
        lines += [
            f"One run of the best settings made after the search, in `{BEST_DIR}/` (fingerprint "
            f"{best_summary.get('fingerprint')}{', as trial #%d' % best.num if same else ''}). These are the "
            "search's only test figures: report them, not the validation figures above and below.",
            "",
            "| test figure | value |",
            "|---|---|",
        ]
        lines += [f"| {label} (`{key}`) | {_number(best_summary.get(key))} |" for key, label in TEST_FIGURES
                  if best_summary.get(key) is not None]
        lines += [f"| replay memory (`buffer_bytes`) | {_number(best_summary.get('buffer_bytes'))} bytes |",
                  f"| continual-learning time (`cl_seconds`) | {_number(best_summary.get('cl_seconds'))} s |", ""]
    lines += ["## Trials (validation figures only, best first)", "",
              "| trial | " + " | ".join(f"`{k}`" for k in searched) + " | " + " | ".join(VALIDATION_FIGURES)
              + " | folder |",
              "|---" * (len(searched) + len(VALIDATION_FIGURES) + 2) + "|"]
    ranked = sorted(trials, key=lambda t: (t.value is None, -(t.value or 0.0), t.num))
    for t in ranked:
        figures = [_number((t.summary or {}).get(k)) for k in VALIDATION_FIGURES] if t.summary else \
                  ["failed or unfinished"] + [""] * (len(VALIDATION_FIGURES) - 1)
        lines.append(f"| #{t.num} | " + " | ".join(t.params.get(k, "") for k in searched) + " | "
                     + " | ".join(figures) + f" | `{t.folder.name}` |")
    return "\n".join(lines) + "\n"


def trials_csv(trials: Sequence[Trial], searched: Sequence[str]) -> str:
    """``trials.csv``: one row per trial, its searched settings and validation figures (no test figure)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["trial", "status", *searched, *VALIDATION_FIGURES, "folder"])
    for t in trials:
        writer.writerow([t.num, "completed" if t.summary else "failed or unfinished",
                         *(t.params.get(k, "") for k in searched),
                         *((t.summary or {}).get(k, "") for k in VALIDATION_FIGURES), t.folder.name])
    return out.getvalue()


def _number(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) >= 1000):
        return f"{int(value):,}"
    return f"{value:.3f}" if isinstance(value, float) else str(value)
