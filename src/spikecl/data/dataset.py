"""The ``dataset`` config group as an object: which SHD-format files, how to bin them, how to partition.

:class:`SpikeFiles` checks its arguments when it is built (before any file is read) and loads the binned,
cached :class:`~spikecl.data.shd.SpikeDataset` with :meth:`SpikeFiles.load`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from spikecl.data.files import file_identity
from spikecl.data.shd import SpikeDataset, input_files, load_dataset
from spikecl.data.splits import Partition
from spikecl.utils import checks


@dataclass
class SpikeFiles:
    """A train and a test file (``.h5``, ``.h5.gz`` or ``.h5.zip``; SSC also has a ``valid_file``) in
    ``root`` (None: the embedded set),
    binned into ``nb_steps`` steps of ``max_time / nb_steps`` seconds over ``nb_units`` input units, and
    partitioned into train and test parts by ``protocol`` (see :class:`~spikecl.data.splits.Partition`)."""

    name: str
    root: str | None
    train_file: str
    test_file: str
    valid_file: str | None = None
    protocol: str = "merged"
    test_fraction: float = 0.2
    val_fraction: float = 0.1
    nb_steps: int = 100
    max_time: float = 1.4
    nb_units: int = 700

    def __post_init__(self) -> None:
        self.nb_steps = checks.integer("nb_steps", self.nb_steps, 1)
        self.nb_units = checks.integer("nb_units", self.nb_units, 1)
        self.max_time = checks.number("max_time", self.max_time)
        self.partition = Partition(self.protocol, self.test_fraction, self.val_fraction)

    def load(self, cache_dir: str | Path) -> SpikeDataset:
        """Read and bin the files, through the binned-data cache under ``cache_dir``."""
        return load_dataset(asdict(self), cache_dir)

    def content(self, cache_dir: str | Path) -> list[str]:
        """SHA-1 of every input file, without reading them into memory (remembered per file under
        ``cache_dir`` while a file keeps its size and time)."""
        return [file_identity(path, Path(cache_dir))["sha1"] for path in input_files(asdict(self))[1]]
