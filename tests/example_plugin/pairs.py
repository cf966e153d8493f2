"""mypkg/pairs.py: a split of your own, learning the new classes two at a time."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from spikecl.data import Split, SpikeDataset


class ClassPairs(Split):
    """Pretrain on ``old_classes``, then learn ``new_classes`` two at a time, in this order."""

    name = "class_pairs"
    per_task = True  # report every task's accuracy after every task, as the progressive split

    def __init__(self, *, old_classes: Sequence[int], new_classes: Sequence[int]) -> None:
        self.old_classes, self.new_classes = list(old_classes), list(new_classes)

    def pools(self, dataset: SpikeDataset) -> list[tuple[str, np.ndarray]]:
        pairs = [self.new_classes[i:i + 2] for i in range(0, len(self.new_classes), 2)]
        return [("pretrain", np.isin(dataset.labels, self.old_classes))] + [
            ("classes " + "+".join(map(str, pair)), np.isin(dataset.labels, pair)) for pair in pairs]
