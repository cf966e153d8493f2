"""Wall-clock timing with warm-up and repeats, and peak memory, on the CPU or a CUDA device."""

from __future__ import annotations

import resource
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Self

import torch


@dataclass
class Timing:
    """Seconds of each repeat of a measured call that handles ``samples`` samples."""

    samples: int
    seconds: list[float] = field(default_factory=list)
    peak_memory_bytes: int | None = None
    memory_at_start_bytes: int | None = None  # resident / allocated when the timed block began
    memory_kind: str = ""
    gpu_utilization_percent: float | None = None
    threads: int | None = None

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
        self.at_start: int | None = None

    def reset(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self.kind = "cuda max_memory_allocated"
            self.at_start = int(torch.cuda.memory_allocated(self.device))
            return
        try:
            Path("/proc/self/clear_refs").write_text("5")  # 5: reset the peak RSS (VmHWM) of this process
            self.kind = "peak RSS of the block (VmHWM)"
            self.at_start = _proc_status("VmRSS")
        except OSError:
            self.kind = "process peak RSS (getrusage)"

    def read(self) -> int:
        if self.device.type == "cuda":
            return int(torch.cuda.max_memory_allocated(self.device))
        if self.kind.startswith("peak RSS of the block"):
            return _proc_status("VmHWM")
        # ru_maxrss is in KiB on Linux, in bytes on macOS
        scale = 1 if sys.platform == "darwin" else 1024
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * scale


def _proc_status(field: str) -> int | None:
    """A memory field of /proc/self/status in bytes (None if absent)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return None


class GpuUtilization:
    """Mean GPU utilisation (NVML, through ``torch.cuda.utilization``) sampled every 20 ms in a background
    thread; None on the CPU or where NVML (the ``pynvml`` package) is not available."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.samples = device, []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        if self.device.type == "cuda" and self._read() is not None:
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.samples) if self.samples else None

    def _read(self) -> float | None:
        try:
            return float(torch.cuda.utilization(self.device))
        except Exception:  # noqa: BLE001 - NVML missing or not supported: no figure, not an error
            return None

    def _poll(self) -> None:
        while not self._stop.wait(0.02):
            value = self._read()
            if value is not None:
                self.samples.append(value)


def measure(fn: Callable[[], object], samples: int, device: torch.device, warmup: int, repeats: int,
            threads: Sequence[int] = ()) -> Timing:
    """Call ``fn`` ``warmup`` times, then time ``repeats`` calls (each synchronised on CUDA).

    With several ``threads`` counts, the whole measurement runs under each (torch.set_num_threads) and the
    fastest is returned: every side is compared at its best setting on this machine.
    """
    if threads:
        best = None
        previous = torch.get_num_threads()
        try:
            for count in threads:
                torch.set_num_threads(count)
                timing = measure(fn, samples, device, warmup, repeats)
                timing.threads = count
                best = timing if best is None or timing.median < best.median else best
        finally:
            torch.set_num_threads(previous)
        return best
    for _ in range(warmup):
        fn()
    synchronize(device)
    memory = PeakMemory(device)
    memory.reset()
    timing = Timing(samples)
    with GpuUtilization(device) as gpu:
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            synchronize(device)
            timing.seconds.append(time.perf_counter() - start)
    timing.peak_memory_bytes, timing.memory_kind = memory.read(), memory.kind
    timing.memory_at_start_bytes = memory.at_start
    timing.gpu_utilization_percent = gpu.mean
    timing.threads = torch.get_num_threads()
    return timing


def measure_pair(reference: Callable[[], object], fast: Callable[[], object], samples: int, device: torch.device,
                 warmup: int, repeats: int, threads: Sequence[int] = ()) -> tuple[Timing, Timing]:
    """Time two calls that do the same work, alternating them repeat by repeat (reference, fast, reference,
    ...), so that both see the same load of a shared machine; otherwise as :func:`measure` (each side's
    fastest thread count; peak memory: the largest of its calls')."""
    if threads:
        best: list[Timing | None] = [None, None]
        previous = torch.get_num_threads()
        try:
            for count in threads:
                torch.set_num_threads(count)
                for i, timing in enumerate(measure_pair(reference, fast, samples, device, warmup, repeats)):
                    timing.threads = count
                    best[i] = timing if best[i] is None or timing.median < best[i].median else best[i]
        finally:
            torch.set_num_threads(previous)
        return best[0], best[1]
    for _ in range(warmup):
        reference()
        fast()
    synchronize(device)
    timings = (Timing(samples), Timing(samples))
    peaks: tuple[list[int], list[int]] = ([], [])
    with GpuUtilization(device) as gpu:
        for _ in range(repeats):
            for fn, timing, peak in zip((reference, fast), timings, peaks):
                memory = PeakMemory(device)
                memory.reset()
                if timing.memory_at_start_bytes is None:
                    timing.memory_at_start_bytes = memory.at_start
                start = time.perf_counter()
                fn()
                synchronize(device)
                timing.seconds.append(time.perf_counter() - start)
                peak.append(memory.read())
                timing.memory_kind = memory.kind
    for timing, peak in zip(timings, peaks):
        timing.peak_memory_bytes = max(peak)
        timing.threads = torch.get_num_threads()
    timings[1].gpu_utilization_percent = gpu.mean  # shared by both sides' calls
    return timings
