"""Multirun support: folder names that make a repeated sweep resume, the sweep status file, the report hook.

conf/config.yaml names the folders of a multirun with resolvers registered by :func:`register_resolvers`:

- ``hydra.sweep.dir``: ``outputs/multirun/<sweep name>``, built from the sweep's command-line overrides:
  the swept ones first, then the others, then a short hash of all of them, e.g.
  ``outputs/multirun/strategy=naive,latent_replay,split=class_incremental-3f2a9c1e``. A named sweep
  (``sweep=<name>``) is ``<name>``, or ``<name>-<other overrides>-<hash>`` when other overrides are given.
  The same command lands in the same folder, which is how a sweep resumes.
- ``hydra.sweep.subdir``: one folder per job, named by the overrides that vary across the sweep
  (``key=value`` sorted, joined by commas), e.g. ``split.speaker=3,strategy.latent_depth=1``; a sweep
  that varies nothing names its job by all its overrides.

Keys in ``hydra.job.config.override_dirname.exclude_keys`` (device, cache_dir, ...) do not name a sweep,
so it resumes in the same folder with another device or cache. ``seed`` is listed there only for Hydra's
own ``override_dirname``: spikecl's names keep it, because it changes results. Characters awkward in paths
become ``_``; long values and long names are shortened to a prefix and a hash.

Both names derive from the sweep's own command line, which a job cannot see (its
``hydra.overrides.task`` holds the job's overrides). The resolvers that read it are therefore cached:
Hydra resolves ``hydra.sweep.dir`` in the sweep's config before composing jobs and copies the resolver
cache into every job's config, so every job reuses the sweep's values.

Single runs land in ``hydra.run.dir`` = ``outputs/runs/<date>/<time>``, made unique by
:func:`unique_dir` (resolver ``spikecl_unique_dir``): a run started in the same second as another (a job
array, two terminals) gets ``<time>-2``, ``<time>-3``, ... instead of sharing its folder.

Sweeps run by the spikecl sweeper (:mod:`hydra_plugins.spikecl_sweeper`) end with ``sweep_status.json``
and the report; Optuna searches with the search report (:mod:`spikecl.tuning`); :class:`ReportCallback`
writes the report after sweeps run by other sweepers.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from spikecl.callbacks import log_failure
from spikecl.errors import ConfigError
from spikecl.utils.atomic import write_json

log = logging.getLogger(__name__)

SWEEP_NAME_RESOLVER = "spikecl_sweep_name"
RUN_NAME_RESOLVER = "spikecl_run_name"
SWEPT_KEYS_RESOLVER = "spikecl_swept_keys"
UNIQUE_DIR_RESOLVER = "spikecl_unique_dir"
MAX_SAME_NAME = 10_000  # unique_dir gives up after this many runs of one second (a runaway loop, not a sweep)
SWEEPER_TARGET = "hydra_plugins.spikecl_sweeper.spikecl_sweeper.SpikeclSweeper"
OPTUNA_TARGET = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"  # its searches: spikecl.tuning
SWEEP_STATUS = "sweep_status.json"
SEED_KEY = "seed"  # changes results: names keep it even though exclude_keys lists it
SWEEP_KEY = "sweep"  # the named-sweep group
DEFAULT_NAME = "default"  # the folder of a job or sweep without naming overrides
MAX_VALUE = 40  # longer override values are shortened to a prefix and a hash
MAX_NAME = 120  # longer names are shortened to a prefix and a hash (file names end at 255 bytes)
HASH_LEN = 8
_UNSAFE = re.compile(r"[^A-Za-z0-9_.=,+@%-]+")


def register_resolvers() -> None:
    """Register the folder-name resolvers with OmegaConf (idempotent; call before composing a config)."""
    # Cached: see the module docstring; the run name is per job and must not be.
    OmegaConf.register_new_resolver(SWEPT_KEYS_RESOLVER, _swept_keys_resolver, use_cache=True, replace=True)
    OmegaConf.register_new_resolver(SWEEP_NAME_RESOLVER, _sweep_name_resolver, use_cache=True, replace=True)
    OmegaConf.register_new_resolver(RUN_NAME_RESOLVER, _run_name_resolver, replace=True)
    # Cached: the folder is claimed once per config, however often Hydra reads hydra.run.dir.
    OmegaConf.register_new_resolver(UNIQUE_DIR_RESOLVER, unique_dir, use_cache=True, replace=True)


def unique_dir(base: str) -> str:
    """Claim a new folder ``base`` (or ``base-2``, ``base-3``, ... if taken) by creating it; returns its path.

    ``os.mkdir`` fails when the folder exists, also for a process on another machine of a shared file
    system, so two runs never claim the same folder.
    """
    Path(base).parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, MAX_SAME_NAME + 1):
        candidate = base if n == 1 else f"{base}-{n}"
        try:
            os.mkdir(candidate)
            return candidate
        except FileExistsError:
            continue
    raise ConfigError(
        f"hydra.run.dir={base} is not valid; {MAX_SAME_NAME} runs already have folders of that name; "
        "give each run its own folder, e.g. hydra.run.dir=outputs/runs/<name>"
    )


def swept_keys(overrides: Sequence[str], params: Mapping[str, Any] | None = None) -> list[str]:
    """Keys that take several values in a sweep: sweep-syntax command-line overrides and
    ``hydra.sweeper.params`` entries (a command-line override of the same key takes precedence)."""
    final = {split_override(f"{key}={value}")[0]: f"{key}={value}" for key, value in (params or {}).items()}
    for item in overrides:
        final[split_override(item)[0]] = item
    return sorted(key for key, item in final.items() if _is_sweep(item))


def sweep_name(overrides: Sequence[str], exclude_keys: Iterable[str] = (), swept: Iterable[str] = ()) -> str:
    """Folder name of a sweep from its command-line overrides (sweep syntax allowed); deterministic."""
    excluded = set(exclude_keys) - {SEED_KEY, SWEEP_KEY}
    swept = set(swept)
    named = ""
    rest = []
    for item in overrides:
        key, value = split_override(item)
        if key == SWEEP_KEY:
            named = _sanitize(value)
        elif key not in excluded:
            rest.append(item)
    if not rest:
        return named or DEFAULT_NAME
    rest.sort(key=lambda item: (split_override(item)[0] not in swept, item))
    readable = _shorten(",".join(_sanitize(item) for item in rest), MAX_NAME)
    return "-".join(part for part in (named, readable, _hash("\n".join(sorted(rest)))) if part)


def run_name(
    overrides: Sequence[str],
    exclude_keys: Iterable[str] = (),
    swept: Iterable[str] = (),
    kv_sep: str = "=",
    item_sep: str = ",",
) -> str:
    """Folder name of one job: its overrides of the swept keys, or when nothing is swept all its
    overrides but the excluded keys (seed is kept, last)."""
    swept = set(swept)
    excluded = set(exclude_keys) - {SEED_KEY}
    items, seeds = [], []
    for item in overrides:
        key, value = split_override(item)
        if (key in swept) if swept else (key not in excluded):
            (seeds if key == SEED_KEY else items).append((item.partition("=")[0], value))
    parts = [f"{_sanitize(k)}{kv_sep}{_sanitize_value(v)}" for k, v in sorted(items) + seeds]
    return _shorten(item_sep.join(parts), MAX_NAME) or DEFAULT_NAME


def _swept_keys_resolver(overrides: Any, params: Any = None) -> list[str]:
    return swept_keys(_strings(overrides), params if isinstance(params, Mapping) else None)


def _sweep_name_resolver(overrides: Any, dirname_cfg: Any = None, swept: Any = ()) -> str:
    return sweep_name(_strings(overrides), _exclude_keys(dirname_cfg), _strings(swept))


def _run_name_resolver(overrides: Any, dirname_cfg: Any = None, swept: Any = ()) -> str:
    seps = dirname_cfg if isinstance(dirname_cfg, Mapping) else {}
    return run_name(
        _strings(overrides),
        _exclude_keys(dirname_cfg),
        _strings(swept),
        seps.get("kv_sep", "="),
        seps.get("item_sep", ","),
    )


@dataclass
class JobRecord:
    """One job of a sweep as written to sweep_status.json."""

    num: int
    overrides: list[str]
    name: str = ""  # what sets the job apart: its overrides of the swept keys (see run_name)
    dir: str | None = None  # the run folder (absolute); None when the job could not be composed
    status: str | None = None  # completed | skipped (already completed with the same fingerprint) | failed
    error: str | None = None
    resume: str | None = None  # "skipped: same fingerprint" or "rerun: <what changed>" for a folder that existed
    cfg: Any = field(default=None, repr=False, compare=False)  # the job's composed config (not written out)


def write_sweep_status(sweep_dir: str | os.PathLike[str], records: Sequence[JobRecord]) -> Path:
    """Atomically write ``<sweep_dir>/sweep_status.json``: counts and every job's folder, overrides, status."""
    sweep_dir = Path(sweep_dir)
    counts = {status: sum(r.status == status for r in records) for status in ("completed", "skipped", "failed")}
    jobs = []
    for record in records:
        job = {f.name: getattr(record, f.name) for f in fields(record) if f.name != "cfg"}
        job["dir"] = _relative(record.dir, sweep_dir)
        jobs.append(job)
    return write_json(sweep_dir / SWEEP_STATUS, {"sweep_dir": str(sweep_dir.resolve()), "counts": counts, "jobs": jobs})


def failed_jobs_message(records: Sequence[JobRecord], sweep_dir: str | os.PathLike[str]) -> str:
    """One line per failed job: number, folder (or name when it has none) and the error's first line."""
    lines = []
    for r in records:
        if r.status == "failed":
            where = _relative(r.dir, Path(sweep_dir)) or f"{r.name} (no folder)"
            first = (r.error or "").strip().splitlines()
            lines.append(f"  #{r.num} {where}: {first[0] if first else 'unknown error'}")
    return "\n".join(lines)


def write_report_safely(sweep_dir: str | os.PathLike[str]) -> Path | None:
    """Write the report of a sweep folder; errors are logged, never raised (a report must not fail a sweep)."""
    try:
        from spikecl.report import write_report

        result = write_report([sweep_dir])
    except Exception as err:
        log_failure(log, f"could not write the report of {sweep_dir} (retry: python -m spikecl.report {sweep_dir})",
                    err)
        return None
    if result.report_md is None:  # no run folder below the sweep folder: nothing was written
        log.info("report: no run folders in %s, nothing written", sweep_dir)
        return None
    log.info("report: %s (%d completed, %d incomplete runs)", result.report_md, result.completed,
             len(result.incomplete))
    return result.report_md


class ReportCallback(Callback):
    """Writes the report into the sweep folder at the end of a multirun.

    Hydra skips ``on_multirun_end`` when a job failed; the spikecl sweeper writes the report itself in every
    case, and an Optuna search gets a search report (:mod:`spikecl.tuning`) instead, so this callback only
    acts for other sweepers.
    """

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if OmegaConf.select(config, "hydra.sweeper._target_") in (SWEEPER_TARGET, OPTUNA_TARGET):
            return
        write_report_safely(Path(str(config.hydra.sweep.dir)))


def _is_sweep(item: str) -> bool:
    try:
        return OverridesParser.create().parse_override(item).is_sweep_override()
    except HydraException:
        return False


def split_override(item: str) -> tuple[str, str]:
    """A command-line override's key and value: ``"+a.b=1"`` -> ``("a.b", "1")``; the key drops
    ``+``/``++``/``~`` and any ``@package``."""
    key, _, value = item.partition("=")
    return key.lstrip("+~").split("@")[0], value


def _sanitize(text: str) -> str:
    return _UNSAFE.sub("_", text).strip("_") or "_"


def _sanitize_value(value: str) -> str:
    return _shorten(_sanitize(value), MAX_VALUE)


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[: limit - HASH_LEN - 1]}~{_hash(text)}"


def _hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:HASH_LEN]


def _strings(values: Any) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):
        return [values]
    return [str(v) for v in values]


def _exclude_keys(dirname_cfg: Any) -> list[str]:
    if isinstance(dirname_cfg, Mapping) or OmegaConf.is_dict(dirname_cfg):
        return _strings(dirname_cfg.get("exclude_keys"))
    return _strings(dirname_cfg)


def _relative(path: str | None, base: Path) -> str | None:
    if path is None:
        return None
    try:
        return str(Path(path).resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)
