"""Wall-clock timing with warm-up and repeats, and peak memory, on the CPU or a CUDA device."""

from __future__ import annotations

import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch


@dataclass
class Timing:
    """Seconds of each repeat of a measured call that handles ``samples`` samples."""

    samples: int
    seconds: list[float] = field(default_factory=list)
    peak_memory_bytes: int | None = None
    memory_kind: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.median if self.median > 0 else float("inf")

    def as_dict(self) -> dict:
        return {**asdict(self), "median_s": self.median, "samples_per_s": self.samples_per_s}


def synchronize(device: torch.device) -> None:
    """Wait for queued device work (CUDA kernels run asynchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class PeakMemory:
    """Peak memory over a measured block: max allocated on CUDA; on the CPU the resident set high-water mark
    (reset per block through /proc/self/clear_refs where Linux allows it, else the process peak so far)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.kind = ""

    def reset(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self.kind = "cuda max_memory_allocated"
            return
        try:
            Path("/proc/self/clear_refs").write_text("5")  # 5: reset the peak RSS (VmHWM) of this process
            self.kind = "peak RSS of the block (VmHWM)"
        except OSError:
            self.kind = "process peak RSS (getrusage)"

    def read(self) -> int:
        if self.device.type == "cuda":
            return int(torch.cuda.max_memory_allocated(self.device))
        if self.kind.startswith("peak RSS of the block"):
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        # ru_maxrss is in KiB on Linux, in bytes on macOS
        scale = 1 if sys.platform == "darwin" else 1024
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * scale


def measure(fn: Callable[[], object], samples: int, device: torch.device, warmup: int, repeats: int) -> Timing:
    """Call ``fn`` ``warmup`` times, then time ``repeats`` calls (each synchronised on CUDA)."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    memory = PeakMemory(device)
    memory.reset()
    timing = Timing(samples)
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        timing.seconds.append(time.perf_counter() - start)
    timing.peak_memory_bytes, timing.memory_kind = memory.read(), memory.kind
    return timing
