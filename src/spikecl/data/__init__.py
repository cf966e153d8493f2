"""The data layer: SHD-format files -> binned spike counts (cached on disk) -> continual-learning tasks.

- :func:`load_dataset` reads a train and a test file (``.h5``, ``.h5.gz`` or ``.h5.zip``) into a
  :class:`SpikeDataset` whose spikes are a compact :class:`BinnedSpikes` event list.
- :func:`bin_spikes` bins one sample exactly as the paper's code; ``BinnedSpikes.dense``/``csr`` give
  model-ready batches.
- :func:`make_tasks` cuts the data into the pretraining pool and the new pools, each split into train and
  test by the ``merged`` or ``official`` protocol.
"""

from spikecl.data.binning import bin_dataset, bin_spikes
from spikecl.data.events import BinnedSpikes
from spikecl.data.shd import SpikeDataset, load_dataset
from spikecl.data.splits import Task, check_split_against_data, make_tasks

__all__ = [
    "BinnedSpikes",
    "SpikeDataset",
    "Task",
    "bin_dataset",
    "bin_spikes",
    "check_split_against_data",
    "load_dataset",
    "make_tasks",
]
