"""mypkg/recent.py: a storage policy of your own, keeping the most recent train samples (first in, first out)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from spikecl.cl.policies import Admission, StoragePolicy
from spikecl.data import Task


class Recent(StoragePolicy):
    """At most ``capacity`` (+ ``growth`` per learned task) samples: the latest task's train samples first,
    then the most recently stored ones; the oldest leave first."""

    def admit(self, task: int, tasks: Sequence[Task], labels: np.ndarray, stored: np.ndarray,
              seed: int) -> Admission:
        size = self.size_after(task)
        add = np.asarray(tasks[task].train, dtype=np.int64)[-size:]  # the task's last samples, at most size
        keep = size - len(add)
        evict = np.arange(len(stored) - keep) if keep < len(stored) else np.zeros(0, dtype=np.int64)
        return Admission(add, evict)  # stored in arrival order: the first positions are the oldest
