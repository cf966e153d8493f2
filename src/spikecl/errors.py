"""The errors spikecl raises for bad input and failed runs; imports nothing from spikecl.

Each is a compact Hydra exception: the command line prints its one-line message without a traceback
(unless ``HYDRA_FULL_ERROR=1``). Every module that checks something raises these, so the import graph has
no circle through a shared checking module.
"""

from __future__ import annotations

from hydra.errors import CompactHydraException


class ConfigError(CompactHydraException, ValueError):
    """A bad configuration value or input file: the message names the key, the value and what is allowed."""


class TrainingDiverged(CompactHydraException, RuntimeError):
    """The loss became NaN or infinite."""


class OutputError(CompactHydraException, OSError):
    """A run's folder cannot be written (read-only, a file, a full disk); what was finished is kept."""


class Interrupted(CompactHydraException, KeyboardInterrupt):
    """The run was interrupted (Ctrl-C); the message says how to resume."""
