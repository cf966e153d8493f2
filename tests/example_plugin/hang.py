"""A plugin for the kill-and-resume test: with SPIKECL_TEST_HANG set it announces that a task finished
training and then hangs in after_task, so the test can SIGKILL the run at a known point."""

from __future__ import annotations

import os
import time
from pathlib import Path

from spikecl.cl import Context, Plugin


class HangAfterTask(Plugin):
    """Hangs after task ``task`` when the environment variable SPIKECL_TEST_HANG names a marker file."""

    def __init__(self, task: int = 2) -> None:
        self.task = int(task)

    def after_task(self, ctx: Context, task: int) -> None:
        marker = os.environ.get("SPIKECL_TEST_HANG")
        if marker and task == self.task:
            Path(marker).write_text(str(os.getpid()))
            time.sleep(600)
