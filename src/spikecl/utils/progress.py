"""Whether to show progress bars (the ``progress`` key)."""

from __future__ import annotations

import sys

from spikecl.utils import checks


def show_progress(setting: bool | str) -> bool:
    """``auto`` shows them only when stderr is a terminal; ``true`` and ``false`` as they say."""
    checks.one_of("progress", setting, ("auto", True, False))
    if setting == "auto":
        return sys.stderr.isatty()
    return setting
