"""A run's folder: held by one run at a time, reused when it holds the same finished run, its records.

:class:`RunFolder` is what an experiment does with its folder before and around the work:

- :meth:`~RunFolder.hold`: a lock for the run's lifetime, so a second run on the same folder (the same
  command started twice, another seed on the same ``hydra.run.dir``) stops at once with one line naming the
  holder instead of mixing its files with the first run's;
- :meth:`~RunFolder.reuse`: the completed summary when it was made with the same fingerprint (the summary's
  own fingerprint is checked, not only ``fingerprint.json``); a run of another fingerprint is set aside
  (:func:`spikecl.fingerprint.set_aside`, its logger files included) and done again;
- :meth:`~RunFolder.write_records`: ``config.yaml``, ``fingerprint.json`` and, for a run made from Python
  outside Hydra, the ``.hydra/`` records Hydra writes for the command line, so that ``spikecl.plot`` and
  ``spikecl.report`` read both alike;
- :meth:`~RunFolder.log_file`: ``spikecl.log`` outside Hydra (Hydra's job logging writes it otherwise).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from spikecl.errors import OutputError
from spikecl.fingerprint import FINGERPRINT_FILE, Fingerprint, compare, set_aside
from spikecl.report.runs import read_completed_summary
from spikecl.utils.atomic import write_json, write_text
from spikecl.utils.locks import file_lock

log = logging.getLogger("spikecl")

LOCK_FILE = ".spikecl-run.lock"
LOG_FILE = "spikecl.log"


class RunFolder:
    """The folder ``path`` of one run (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise OutputError(f"the run folder {self.path} is a file; choose another folder (hydra.run.dir=...)")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            (self.path / LOCK_FILE).touch()
        except OSError as exc:
            raise OutputError(f"cannot write in the run folder {self.path} ({exc.strerror}); choose a writable "
                              "folder (hydra.run.dir=...)") from None

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the folder while the block runs; a second holder stops at once, naming the first."""
        with file_lock(self.path / LOCK_FILE, timeout=0, what=f"the run folder {self.path} is in use by another "
                       "run; wait for it to end or choose another folder (hydra.run.dir=...)"):
            yield

    def reuse(self, fp: Fingerprint) -> dict[str, Any] | None:
        """The completed summary of this folder if it was made with ``fp``; otherwise the earlier result files
        of another fingerprint (finished or not) are set aside and None is returned."""
        same, reason = compare(self.path, fp)
        if same:
            log.info("skipping: %s already holds a completed run with the same fingerprint (%s)", self.path,
                     fp.digest)
            return read_completed_summary(self.path)
        if reason is not None:
            set_aside(self.path, reason)
        return None

    def write_records(self, config: Mapping[str, Any], fp: Fingerprint, hydra: Mapping[str, Any] | None) -> None:
        """``config.yaml`` (resolved), ``fingerprint.json`` and, when Hydra did not write them (a run made from
        Python), ``.hydra/config.yaml``, ``.hydra/overrides.yaml`` and ``.hydra/hydra.yaml`` from ``hydra``
        (the Hydra node that ``spikecl.compose`` keeps; None: empty overrides)."""
        write_text(self.path / "config.yaml", yaml.safe_dump(dict(config), sort_keys=False))
        write_json(self.path / FINGERPRINT_FILE, fp.to_dict())
        records = self.path / ".hydra"
        if (records / "config.yaml").exists():
            return
        hydra = dict(hydra or {})
        overrides = list(hydra.get("overrides", {}).get("task", []))
        write_text(records / "config.yaml", yaml.safe_dump(dict(config), sort_keys=False))
        write_text(records / "overrides.yaml", yaml.safe_dump(overrides))
        write_text(records / "hydra.yaml", yaml.safe_dump({"hydra": hydra}, sort_keys=False))

    @contextmanager
    def log_file(self) -> Iterator[None]:
        """``spikecl.log`` in this folder while the block runs, unless a handler (Hydra's) already writes it."""
        target = (self.path / LOG_FILE).resolve()
        root = logging.getLogger()
        if any(isinstance(h, logging.FileHandler) and Path(h.baseFilename).resolve() == target for h in root.handlers):
            yield
            return
        handler = logging.FileHandler(target)
        handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
        root.addHandler(handler)
        level = root.level
        if root.level > logging.INFO or root.level == logging.NOTSET:
            root.setLevel(logging.INFO)
        try:
            yield
        finally:
            root.removeHandler(handler)
            root.setLevel(level)
            handler.close()
