"""Plain descriptions of built objects: what they are and the settings they hold, for cache keys."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch


def describe(obj: Any) -> Any:
    """A JSON-able description of ``obj``: numbers, strings and None as they are; containers element-wise;
    arrays and tensors by a hash of their content; a partial by its function and arguments; a class or
    function by its qualified name; any other object by its class and its public attributes."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, Mapping):
        return {str(k): describe(v) for k, v in obj.items()}
    if isinstance(obj, Sequence) and not isinstance(obj, str):  # lists, tuples, a config's ListConfig
        return [describe(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        data = np.ascontiguousarray(obj)
        return {"array": hashlib.blake2b(data.tobytes(), digest_size=16).hexdigest(), "dtype": str(data.dtype),
                "shape": list(data.shape)}
    if isinstance(obj, functools.partial):
        return {"_target_": _name(obj.func), "args": describe(obj.args), **describe(obj.keywords)}
    if isinstance(obj, type) or inspect.isroutine(obj):
        return _name(obj)
    if dataclasses.is_dataclass(obj):
        return {"_target_": _name(type(obj)), **describe(dataclasses.asdict(obj))}
    return {"_target_": _name(type(obj)), **{k: describe(v) for k, v in vars(obj).items() if not k.startswith("_")}}


def _name(obj: Any) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"
