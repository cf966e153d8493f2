"""The ``device`` config group as an object: where tensors live and how many CPU threads torch uses."""

from __future__ import annotations

import torch

from spikecl.errors import ConfigError
from spikecl.utils import checks

DEVICES = ("auto", "cpu", "cuda")


class Device:
    """``auto`` picks CUDA when available, else the CPU; ``num_threads`` (None: torch's default) sets
    torch's intra-op CPU threads when :meth:`activate` is called."""

    def __init__(self, *, name: str, num_threads: int | None) -> None:
        self.name = checks.one_of("name", name, DEVICES)
        self.num_threads = None if num_threads is None else checks.integer("num_threads", num_threads, 1)
        if name == "cuda" and not torch.cuda.is_available():
            raise ConfigError("name='cuda' is not valid here: no CUDA device is available "
                              "(torch.cuda.is_available() is False); use device=cpu or device=auto")

    @property
    def torch(self) -> torch.device:
        """The torch device."""
        return torch.device("cuda" if self.name == "cuda" or (self.name == "auto" and torch.cuda.is_available())
                            else "cpu")

    def activate(self) -> torch.device:
        """Apply ``num_threads`` and return the torch device."""
        if self.num_threads:
            torch.set_num_threads(self.num_threads)
        return self.torch
