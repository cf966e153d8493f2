"""Argument checks for the objects that configs build: each raises a one-line :class:`ConfigError`.

Messages name the argument as the object knows it (``epochs='abc' is not valid; ...``); the code that
builds an object from a config group prefixes the group's path (``strategy.epochs=...``), see
:mod:`spikecl.build`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from spikecl.errors import ConfigError


def one_of(key: str, value: Any, allowed: Iterable[Any]) -> Any:
    """``value`` if it is in ``allowed``."""
    allowed = tuple(allowed)
    if isinstance(value, bool) and not any(isinstance(a, bool) for a in allowed) or value not in allowed:
        raise ConfigError(f"{key}={value!r} is not valid; allowed: {', '.join(map(str, allowed))}")
    return value


def integer(key: str, value: Any, minimum: int = 0) -> int:
    """``value`` as an int, if it is an integer >= ``minimum`` (booleans are not integers here)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{key}={value!r} is not valid; it must be an integer >= {minimum}")
    return int(value)


def number(key: str, value: Any, *, positive: bool = True) -> float:
    """``value`` as a float, if it is a finite number > 0 (``positive``) or >= 0."""
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            or not (value > 0 if positive else value >= 0)):
        raise ConfigError(f"{key}={value!r} is not valid; it must be a finite number {'>' if positive else '>='} 0")
    return float(value)


def real(key: str, value: Any) -> float:
    """``value`` as a float, if it is a finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{key}={value!r} is not valid; it must be a finite number")
    return float(value)


def fraction(key: str, value: Any, *, allow_zero: bool = False, example: float = 0.2) -> float:
    """``value`` as a float in (0, 1) (or [0, 1) with ``allow_zero``)."""
    low_ok = (value >= 0) if allow_zero else (value > 0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (low_ok and value < 1):
        raise ConfigError(f"{key}={value!r} is not valid; it must be in {'[0' if allow_zero else '(0'}, 1), "
                          f"e.g. {example}")
    return float(value)


def boolean(key: str, value: Any) -> bool:
    """``value`` if it is true or false (a string such as 'abc' is not read as true)."""
    if not isinstance(value, bool):
        raise ConfigError(f"{key}={value!r} is not valid; it must be true or false")
    return value


def int_list(key: str, values: Any, what: str = "class") -> list[int]:
    """A non-empty list of distinct integers >= 0."""
    values = list(values) if values is not None and not isinstance(values, (str, int)) else None
    if values is None:
        raise ConfigError(f"{key} is not valid; give a list, e.g. {key}=[0,1,2]")
    for v in values:
        integer(f"{key} entry", v, 0)
    if not values:
        raise ConfigError(f"{key}=[] is not valid; give at least one {what}, e.g. {key}=[0,1,2]")
    if len(set(values)) != len(values):
        raise ConfigError(f"{key}={values} is not valid; it lists a {what} twice")
    return [int(v) for v in values]
