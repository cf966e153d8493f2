"""How a failure is logged: one line, with the traceback only when ``HYDRA_FULL_ERROR=1``.

spikecl's errors (:mod:`spikecl.errors`) are compact Hydra exceptions whose message says what is wrong and
how to fix it; a traceback adds nothing for the researcher. :class:`LogJobReturn` replaces Hydra's
``LogJobReturnCallback`` (which logs every failure with its traceback) in ``conf/config.yaml``, and
:func:`log_failure` serves the other places that log an error and go on (the sweeper, the report).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import CompactHydraException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger(__name__)

FULL_ERROR_ENV = "HYDRA_FULL_ERROR"  # Hydra's own switch for full tracebacks


def full_error() -> bool:
    """Whether the user asked for full tracebacks (``HYDRA_FULL_ERROR=1``, as Hydra reads it)."""
    return os.environ.get(FULL_ERROR_ENV) == "1"


def describe(err: BaseException) -> str:
    """The message of a compact exception; ``Type: message`` for any other (a bug, most likely)."""
    text = str(err).strip()
    if isinstance(err, CompactHydraException):
        return text or type(err).__name__
    hint = "" if full_error() else f" (set {FULL_ERROR_ENV}=1 for the traceback)"
    return (f"{type(err).__name__}: {text}" if text else type(err).__name__) + hint


def log_failure(logger: logging.Logger, what: str, err: BaseException) -> None:
    """Log ``"<what>: <describe(err)>"`` as an error; with the traceback only when HYDRA_FULL_ERROR=1."""
    logger.error("%s: %s", what, describe(err), exc_info=err if full_error() else None)


def returned(value: Any) -> str:
    """What a job's return value is: spikecl's main returns the final validation accuracy on all classes
    (``val_acc_all``, what a sweeper that optimises compares; never a test figure), or None without
    validation data."""
    if value is None:
        return "no return value (no validation data, so no validation accuracy to optimise)"
    return f"returned the validation accuracy on all classes (val_acc_all, what sweepers optimise): {value}"


class LogJobReturn(Callback):
    """Logs each job's outcome: its return value, or its error in one line (see the module docstring)."""

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if job_return.status == JobStatus.COMPLETED:
            log.info("Succeeded: %s", returned(job_return.return_value))
        elif isinstance(job_return._return_value, BaseException):  # FAILED; .return_value would re-raise it
            log_failure(log, "Failed", job_return._return_value)
        else:
            log.error("Status unknown: %s", job_return.status)
