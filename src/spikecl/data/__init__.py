"""The data layer: SHD-format files -> binned spike counts (cached on disk) -> continual-learning tasks.

- :class:`SpikeFiles` (the ``dataset`` config group) names the files and the binning; its ``load`` reads a
  train and a test file (``.h5``, ``.h5.gz`` or ``.h5.zip``) into a :class:`SpikeDataset` whose spikes are a
  compact :class:`BinnedSpikes` event list.
- :func:`bin_spikes` bins one sample exactly as the paper's code; ``BinnedSpikes.dense``/``csr`` give
  model-ready batches.
- A :class:`Split` (``SampleIncremental``, ``ClassIncremental``, ``Progressive``) cuts the data into the
  pretraining pool and the new pools, each split into train and test by a :class:`Partition`.
"""

from spikecl.data.binning import bin_dataset, bin_spikes
from spikecl.data.events import BinnedSpikes
from spikecl.data.shd import SpikeDataset, load_dataset
from spikecl.data.dataset import SpikeFiles
from spikecl.data.splits import ClassIncremental, Partition, Progressive, SampleIncremental, Split, Task

__all__ = [
    "BinnedSpikes",
    "ClassIncremental",
    "Partition",
    "Progressive",
    "SampleIncremental",
    "SpikeDataset",
    "SpikeFiles",
    "Split",
    "Task",
    "bin_dataset",
    "bin_spikes",
    "load_dataset",
]
