"""Ordered parallel map over worker processes, with a progress bar (the generator and the converter)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, TypeVar

from tqdm import tqdm

T = TypeVar("T")


def parallel_map(fn: Callable[..., T], tasks: Sequence[tuple], jobs: int = 1, desc: str = "", unit: str = "it",
                 progress: bool = True) -> list[T]:
    """``[fn(*task) for task in tasks]``, in ``jobs`` processes (forked where the platform can, so workers
    share what the parent built before), results in the order of ``tasks``."""
    results: list[Any] = [None] * len(tasks)
    with tqdm(total=len(tasks), desc=desc, unit=unit, disable=not progress) as bar:
        if jobs <= 1:
            for i, task in enumerate(tasks):
                results[i] = fn(*task)
                bar.update()
        else:
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("fork" if "fork" in methods else None)
            with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
                futures = {pool.submit(fn, *task): i for i, task in enumerate(tasks)}
                for future in as_completed(futures):
                    results[futures[future]] = future.result()
                    bar.update()
    return results
