"""Ctrl-C that is never lost.

Python raises KeyboardInterrupt wherever the main thread is when SIGINT arrives. Inside a finaliser (a
generator closed by the garbage collector, a ``__del__``) the exception is printed as "Exception ignored" and
dropped, and the run would go on to its end as if nothing had been pressed. The command line's handler
(:func:`install`) raises as Python's does and also records the interrupt; the training loop calls
:func:`check` at every minibatch, so a dropped interrupt still stops the run there.
"""

from __future__ import annotations

import signal
from types import FrameType

_pending = False


def install() -> None:
    """Record and raise on SIGINT (main thread only; the command line calls it before Hydra starts)."""
    signal.signal(signal.SIGINT, _record_and_raise)


def _record_and_raise(signum: int, frame: FrameType | None) -> None:
    global _pending
    _pending = True
    raise KeyboardInterrupt


def check() -> None:
    """Raise KeyboardInterrupt for a recorded Ctrl-C that nothing has acted on yet."""
    if _pending:
        clear()
        raise KeyboardInterrupt


def clear() -> None:
    """Forget the recorded Ctrl-C (it has been acted on)."""
    global _pending
    _pending = False
