"""A BasicSweeper that resumes, runs every job despite failures, and reports at the end.

Same sweep syntax as Hydra's basic sweeper (comma lists, ``range()``, ``glob()``, ``hydra.sweeper.params``,
``max_batch_size``) and any launcher (basic, joblib, submitit). Differences:

1. Before launching, every job's config is composed and its run folder resolved. A job whose folder already
   holds a completed summary.json is skipped (logged); unfinished or failed ones run again. Two jobs that
   would share a folder stop the sweep before anything runs. A job whose config cannot be composed fails
   alone instead of stopping the sweep.
2. A failed job (or a launcher error for a batch) never stops the other jobs or batches.
3. At the end: ``<sweep dir>/sweep_status.json`` (every job's folder, overrides, status and error), a log
   of the failed jobs, the report (``spikecl.report``, also when jobs failed), then an error listing the
   failed jobs, so the command exits non-zero.
4. One sweep at a time per sweep folder: a sweep holds ``<sweep dir>/.sweep.lock`` while it runs, and a
   second sweep started on the same folder stops at once with one message naming the first.
"""

# No ``from __future__ import annotations``: Hydra's plugin scanner runs this module before it is in
# sys.modules, and dataclasses then cannot resolve string annotations.
import logging
import os
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import CompactHydraException
from omegaconf import OmegaConf, open_dict, read_write
from omegaconf.errors import OmegaConfBaseException

log = logging.getLogger(__name__)


@dataclass
class SpikeclSweeperConf:
    """``hydra/sweeper=spikecl`` settings (``params`` and ``max_batch_size`` as in the basic sweeper)."""

    _target_: str = "hydra_plugins.spikecl_sweeper.spikecl_sweeper.SpikeclSweeper"
    # Launch at most this many jobs at once (None: all); each batch waits for the previous one.
    max_batch_size: int | None = None
    # Sweep definition in config, e.g. {split.speaker: "range(0,12)"}; the command line takes precedence.
    params: dict[str, str] | None = None
    # Write <sweep dir>/report.md, summary.csv and plots/ at the end (also when jobs failed).
    report: bool = True


ConfigStore.instance().store(group="hydra/sweeper", name="spikecl", node=SpikeclSweeperConf, provider="spikecl")


SWEEP_LOCK = ".sweep.lock"  # in the sweep folder, held by the sweep that runs there


class SweepFailedError(CompactHydraException):
    """Some jobs of the sweep failed; the message lists them (the others ran to the end)."""


class SweepBusyError(CompactHydraException):
    """Another sweep is running in the same sweep folder."""


class SpikeclSweeper(BasicSweeper):
    """See the module docstring."""

    def __init__(
        self, max_batch_size: int | None = None, params: dict[str, str] | None = None, report: bool = True
    ) -> None:
        super().__init__(max_batch_size=max_batch_size, params=params)
        self.report = report

    def sweep(self, arguments: list[str]) -> Any:
        from spikecl.utils.locks import LockTimeout, file_lock

        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides(self._parse_config() + list(arguments))
        jobs = [job for batch in self.split_arguments(overrides, None) for job in batch]

        # Resolving the sweep folder here fills the resolver cache that every job's config inherits.
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        # The same for the swept keys that name run folders, also when the command line sets hydra.sweep.dir
        # (then the folder's resolvers never run): resolving the subdir pattern here caches them. A pattern
        # with job-level values (hydra.job.num) cannot resolve here, and it does not use the swept keys.
        try:
            str(self.config.hydra.sweep.subdir)
        except OmegaConfBaseException:
            pass
        sweep_dir.mkdir(parents=True, exist_ok=True)
        with ExitStack() as held:
            try:  # at once or not at all: a second sweep here would run the same jobs twice
                held.enter_context(file_lock(sweep_dir / SWEEP_LOCK, timeout=0, what="the sweep folder"))
            except LockTimeout as err:
                raise SweepBusyError(
                    f"hydra.sweep.dir={sweep_dir} is not valid; another sweep is running there ({err.holder}; "
                    f"lock file {err.path}); wait for it to finish (the same command then resumes it), stop it, "
                    "or give this sweep another folder with hydra.sweep.dir=..."
                ) from None
            return self._sweep(sweep_dir, arguments, jobs)

    def _sweep(self, sweep_dir: Path, arguments: list[str], jobs: list[list[str]]) -> Any:
        """Run the jobs of a sweep whose folder this process holds (see :meth:`sweep`)."""
        from spikecl.sweeps import (JobRecord, failed_jobs_message, run_name, swept_keys, write_report_safely,
                                    write_sweep_status)
        from spikecl.utils.atomic import write_with

        assert self.config is not None
        write_with(sweep_dir / "multirun.yaml", lambda tmp: OmegaConf.save(self.config, tmp))

        swept = swept_keys(list(arguments), self.params)
        exclude = list(self.config.hydra.job.config.override_dirname.exclude_keys)
        records = [JobRecord(i, list(job), name=run_name(job, exclude, swept)) for i, job in enumerate(jobs)]
        resumable = self._plan(records, sweep_dir)
        pending = [r for r in records if r.status is None]
        # Launched anyway but finished before (folder names that depend on the job number): run() skips them.
        done_before = {r.num for r in pending if r.dir is not None and _completed(r.dir)
                       and not (r.resume or "").startswith("rerun")}
        skipped = sum(r.status == "skipped" for r in records)
        log.info(
            f"Sweep {sweep_dir}: {len(records)} jobs, {skipped} already completed, "
            f"{len(records) - len(pending) - skipped} not composable, {len(pending)} to run"
        )
        returns: list[Sequence[JobReturn]] = []
        launched = 0
        for batch in self._batches(pending, contiguous=not resumable):
            # Job numbers follow the launch order, or the sweep order when folder names depend on them.
            returns.append(self._launch(batch, launched if resumable else batch[0].num, done_before))
            launched += len(batch)

        write_sweep_status(sweep_dir, records)
        counts = {s: sum(r.status == s for r in records) for s in ("completed", "skipped", "failed")}
        log.info(f"Sweep {sweep_dir} done: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
        message = failed_jobs_message(records, sweep_dir)
        if counts["failed"]:
            log.error(f"{counts['failed']} failed jobs (rerun the same command to retry them):\n{message}")
        if self.report:
            write_report_safely(sweep_dir)
        if counts["failed"]:
            raise SweepFailedError(
                f"{counts['failed']} of {len(records)} jobs failed (details in {sweep_dir / 'sweep_status.json'}; "
                f"rerun the same command to retry them):\n{message}"
            )
        return returns

    def _plan(self, records: Sequence[Any], sweep_dir: Path) -> bool:
        """Compose every job and resolve its folder; mark completed jobs skipped unless that is unsafe.

        Returns False when folder names depend on the job number: then nothing is skipped here (every job
        keeps its number and a completed one skips itself in run()).
        """
        number_dependent = False
        owners: dict[str, Any] = {}
        for record in records:
            try:
                record.dir, depends_on_num, record.cfg = self._run_dir(record.overrides, record.num)
                number_dependent = number_dependent or depends_on_num
            except Exception as err:  # a config that cannot be composed fails this job only
                record.status, record.error = "failed", f"could not compose the job's config: {_describe(err)}"
                log.error(f"#{record.num} {record.name}: {record.error}")
                continue
            if record.dir in owners:
                other = owners[record.dir]
                raise CompactHydraException(
                    f"jobs #{other.num} [{' '.join(other.overrides)}] and #{record.num} "
                    f"[{' '.join(record.overrides)}] would share the run folder {record.dir}: remove the key that "
                    "tells them apart from hydra.job.config.override_dirname.exclude_keys, or set "
                    "hydra.sweep.subdir"
                )
            owners[record.dir] = record
        if number_dependent:
            log.warning(
                "hydra.sweep.subdir depends on the job number: completed jobs are launched again (and skip "
                "themselves) so that every job keeps its number and folder"
            )
            return False
        for record in records:
            if record.status is None and _reusable(record):
                record.status = "skipped"
                log.info(f"#{record.num} skipping: already completed with the same fingerprint: "
                         f"{os.path.relpath(record.dir, sweep_dir)}")
            elif record.resume:
                log.info(f"#{record.num} runs again ({record.resume}): {os.path.relpath(record.dir, sweep_dir)}")
        return True

    def _run_dir(self, overrides: Sequence[str], num: int) -> tuple[str, bool, Any]:
        """The folder run_job would use for this job (composed as a launcher composes it), whether that
        folder depends on the job number, and the job's config."""
        assert self.config is not None and self.hydra_context is not None
        cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        saved = HydraConfig.instance().cfg
        try:
            folders = []
            for n in (num, num + 10**6):
                with read_write(cfg.hydra), open_dict(cfg.hydra):  # set_config leaves cfg.hydra read-only
                    cfg.hydra.job.num = n
                    cfg.hydra.job.id = f"{cfg.hydra.job.name}_{n}"
                HydraConfig.instance().set_config(cfg)  # for ${hydra:...} interpolations in the folder names
                folders.append(os.path.abspath(os.path.join(str(cfg.hydra.sweep.dir), str(cfg.hydra.sweep.subdir))))
            return folders[0], folders[0] != folders[1], cfg
        finally:
            HydraConfig.instance().cfg = saved

    def _batches(self, pending: Sequence[Any], contiguous: bool) -> list[list[Any]]:
        """Chunks of at most max_batch_size jobs; with ``contiguous``, also cut wherever job numbers jump."""
        batches: list[list[Any]] = []
        if not pending:
            return batches
        for chunk in self.split_overrides_to_chunks(list(pending), self.max_batch_size):
            current: list[Any] = []
            for record in chunk:
                if current and contiguous and record.num != current[-1].num + 1:
                    batches.append(current)
                    current = []
                current.append(record)
            batches.append(current)
        return batches

    def _launch(self, batch: Sequence[Any], initial_job_idx: int, done_before: set) -> Sequence[JobReturn]:
        """Launch one batch and record each outcome; a launcher error fails the batch's unfinished jobs."""
        assert self.launcher is not None
        try:
            results = self.launcher.launch([r.overrides for r in batch], initial_job_idx=initial_job_idx)
        except Exception as err:  # e.g. a SLURM job killed at its time limit: keep going with the next batch
            from spikecl.callbacks import log_failure

            log_failure(log, f"the launcher failed for jobs #{batch[0].num}..#{batch[-1].num}", err)
            for record in batch:
                if record.dir is not None and _completed(record.dir):
                    record.status = "skipped" if record.num in done_before else "completed"
                else:
                    record.status, record.error = "failed", f"launcher error: {_describe(err)}"
            return []
        for record, result in zip(batch, results, strict=True):
            if result.hydra_cfg is not None:
                record.dir = str(result.hydra_cfg.hydra.runtime.output_dir)
            if result.status == JobStatus.COMPLETED:
                record.status = "skipped" if record.num in done_before else "completed"
            else:
                record.status, record.error = "failed", _describe(result._return_value)
        return results


def _completed(run_dir: str) -> bool:
    """Whether the job in ``run_dir`` finished (whatever its fingerprint): the status a launched job gets."""
    from spikecl.report.runs import read_completed_summary

    return read_completed_summary(run_dir) is not None


def _reusable(record: Any) -> bool:
    """Whether the job's folder holds a completed run of the job's own fingerprint, so the sweep skips it:
    the one rule the sweeper skips by. Notes in ``record.resume`` why a finished folder runs again."""
    from spikecl.fingerprint import reusable

    skip, reason = reusable(Path(record.dir), record.cfg)
    record.resume = "skipped: same fingerprint" if skip else (f"rerun: {reason}" if reason else None)
    return skip


def _describe(err: Any) -> str:
    if isinstance(err, BaseException):
        text = str(err).strip()
        return f"{type(err).__name__}: {text}" if text else type(err).__name__
    return str(err)
