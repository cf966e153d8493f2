"""Event-driven products for the spiking network: only the nonzero entries of sparse activity do work.

Two kinds of sparse operand occur in training:

- the binned input, a CSR matrix [B*T, inputs] of spike counts (a few percent nonzero), projected by W1;
- hidden-layer spikes, 0/1 matrices [T*B, H] (typically 1-15 % ones), multiplied by the next layer's
  weights or the readout, and, transposed, by gradients for the weight gradients (W and V).

An :class:`Events` list holds the nonzero entries once, grouped by row and (built on first use) by column.
``A @ W`` is then an ``embedding_bag(mode="sum")`` over the rows' events and ``A^T @ G`` the same over the
columns' events: work per event instead of per matrix entry, several times faster on a CPU than a dense
product or torch's CSR product (whose backward converts ``x^T`` with a general sort on every call). Only
the summation order differs from a dense product, so results agree to float32 rounding.

The same seed gives the same numbers with any number of CPU threads: ``embedding_bag`` splits its work over
output rows only, each row summing its events in order, and the dense products (:func:`matmul`) run on one
thread. MKL's sgemm adds the sums of a product in an order that depends on the thread count (here 1 and 2
threads happen to agree, 4 and 8 do not), and spike thresholds turn such rounding differences into
different training runs.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


@contextmanager
def one_thread(device: torch.device) -> Iterator[None]:
    """Run the enclosed operations on one CPU thread; the setting is process-wide, so it is restored after.

    Used for the per-step loops of the LIF layers, whose operations are far too small to split (the
    [64, 200] x [200, 200] step product takes 1.2-2.3x longer on two threads of a 2-core machine than on one),
    and for the dense products, whose sums must not depend on the thread count.
    """
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class OneThreadMatmul(torch.autograd.Function):
    """``a @ b`` whose forward and backward products (the same as autograd's for ``@``) run on one CPU thread."""

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor) -> Tensor:
        ctx.save_for_backward(a, b)
        with one_thread(a.device):
            return a @ b

    @staticmethod
    def backward(ctx, grad: Tensor):
        a, b = ctx.saved_tensors
        with one_thread(grad.device):
            grad_a = grad @ b.t() if ctx.needs_input_grad[0] else None
            grad_b = a.t() @ grad if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """``a @ b`` (2-D) rounded the same for any number of CPU threads: it and its gradient run on one thread.

    These products are ~10 % of a training step (the per-step loops, most of the rest, run on one thread
    anyway), so more threads could save at most that; on a 2-core machine the cost was not measurable.
    """
    if torch.is_grad_enabled() and (a.requires_grad or b.requires_grad):
        return OneThreadMatmul.apply(a, b)
    with one_thread(a.device):
        return a @ b


def _bag_sum(indices: Tensor, offsets: Tensor, table: Tensor, weights: Tensor | None) -> Tensor:
    """Row i = sum of ``table[indices[j]] * weights[j]`` over j in [offsets[i], offsets[i+1])."""
    return F.embedding_bag(indices, table, offsets, mode="sum", per_sample_weights=weights)


def _values(picked: np.ndarray) -> Tensor | None:
    """Event values as float32, or None when all are 1 (spikes: the products need no weights)."""
    return None if np.all(picked == 1) else torch.from_numpy(picked.astype(np.float32))


def _offsets(sorted_keys: np.ndarray, nb_groups: int) -> Tensor:
    """Start of each key's run in ``sorted_keys`` (ascending keys in [0, nb_groups))."""
    starts = np.zeros(nb_groups, dtype=np.int64)
    np.cumsum(np.bincount(sorted_keys, minlength=nb_groups)[:-1], out=starts[1:])
    return torch.from_numpy(starts)


class Events:
    """The nonzero entries of a matrix A [R, H]: row-sorted ``cols``/``values`` (``values`` None for 0/1
    spikes), each row's first event ``offsets``, and (computed on first use) each event's row.
    Device: the tensors' device (CPU or CUDA)."""

    MAX_DENSITY = 0.2  # never event-driven above this fraction of nonzeros
    # CPU cost model, nanoseconds per entry of A (measured on a 2-core x86 machine, one thread): finding the
    # nonzeros costs SCAN + SCAN_PER_DENSITY * density (NumPy's scan is branchy at a few percent), an
    # event-driven product EVENT * density per unit of output width, a dense product DENSE per unit of width.
    SCAN, SCAN_PER_DENSITY, EVENT, DENSE = 0.4, 23.0, 0.05, 0.022

    @classmethod
    def pay_off(cls, density: float, product_width: int) -> bool:
        """Whether scanning a matrix of this density for events beats dense products of this total width."""
        events = cls.SCAN + cls.SCAN_PER_DENSITY * density + cls.EVENT * density * product_width
        return density <= cls.MAX_DENSITY and events < cls.DENSE * product_width

    def __init__(self, cols: Tensor, values: Tensor | None, offsets: Tensor, shape: tuple[int, int],
                 rows: Tensor | None = None):
        self.cols, self.values, self.offsets, self.shape, self._rows = cols, values, offsets, shape, rows
        self._by_col: tuple[Tensor, Tensor, Tensor | None] | None = None

    @classmethod
    def from_csr(cls, x: Tensor) -> Events:
        """Events of a sparse CSR matrix (any device)."""
        cols = x.col_indices()
        return cls(cols, x.values(), x.crow_indices()[:-1].to(cols.dtype), tuple(x.shape))

    @property
    def rows(self) -> Tensor:
        """Row of each event."""
        if self._rows is None:
            ends = torch.cat([self.offsets[1:], self.offsets.new_tensor([len(self.cols)])])
            counts = ends - self.offsets
            if self.cols.device.type == "cpu":
                ids = np.arange(self.shape[0], dtype=self.cols.numpy().dtype)
                self._rows = torch.from_numpy(np.repeat(ids, counts.numpy()))
            else:  # output_size spares a read of the length back to the host
                ids = torch.arange(self.shape[0], dtype=self.cols.dtype, device=self.cols.device)
                self._rows = torch.repeat_interleave(ids, counts, output_size=len(self.cols))
        return self._rows

    @classmethod
    def from_step_nonzeros(cls, nonzeros: list[np.ndarray], batch: int, width: int) -> Events:
        """Events of time-major spikes [T, B, H] from each step's nonzero flat positions in its [B, H] block
        (as collected by the event-driven recurrence)."""
        step_size = batch * width
        flat = np.concatenate([nz + t * step_size for t, nz in enumerate(nonzeros)])
        rows, cols = np.divmod(flat, width)
        nb_rows = len(nonzeros) * batch
        return cls(torch.from_numpy(cols), None, _offsets(rows, nb_rows), (nb_rows, width), torch.from_numpy(rows))

    @classmethod
    def of_spikes(cls, activity: Tensor, product_width: int, binary: bool = True) -> Events | None:
        """Events of ``activity`` [..., H] (any strides; rows in logical order) when event-driven products with
        it, of total output width ``product_width``, are faster (:meth:`pay_off`; only on a CPU).
        ``binary``: the entries are known to be 0 or 1, so no values are kept."""
        if activity.device.type != "cpu" or activity.numel() == 0 or not cls.pay_off(0.0, product_width):
            return None
        act = activity.detach()
        if act.dim() == 3 and not act.is_contiguous() and act.transpose(0, 1).is_contiguous():
            return cls._of_transposed(act, product_width, binary)
        width = act.shape[-1]
        nonzero = act.bool()  # (x != 0), several times faster than the comparison op on a CPU
        mask = nonzero.reshape(-1, width).numpy()
        if not cls.pay_off(np.count_nonzero(mask) / mask.size, product_width):
            return None
        flat = np.flatnonzero(mask)
        values = None if binary else _values(act.reshape(-1).numpy()[flat])
        rows, cols = np.divmod(flat, width)
        return cls(torch.from_numpy(cols), values, _offsets(rows, mask.shape[0]), (mask.shape[0], width),
                   torch.from_numpy(rows))

    @classmethod
    def _of_transposed(cls, act: Tensor, product_width: int, binary: bool) -> Events | None:
        """Events of a time-major view [T, B, H] of batch-major storage [B, T, H] (stored latents), scanned in
        storage order and regrouped by time step: cheaper than copying the view into time-major order."""
        steps, batch, width = act.shape
        stored = act.transpose(0, 1)
        mask = stored.bool().numpy()
        if not cls.pay_off(np.count_nonzero(mask) / mask.size, product_width):
            return None
        flat = np.flatnonzero(mask)                    # ordered by (sample, step, unit)
        sample, rest = np.divmod(flat, steps * width)
        step, cols = np.divmod(rest, width)
        order = np.argsort(step.astype(np.uint8 if steps <= 1 << 8 else np.uint16), kind="stable")
        rows = step[order] * batch + sample[order]     # now ordered by (step, sample, unit)
        values = None if binary else _values(stored.numpy().reshape(-1)[flat[order]])
        return cls(torch.from_numpy(cols[order]), values, _offsets(rows, steps * batch), (steps * batch, width),
                   torch.from_numpy(rows))

    def matmul(self, w: Tensor) -> Tensor:
        """``A @ w``, [R, N]."""
        return _bag_sum(self.cols, self.offsets, w, self.values)

    def t_matmul(self, grad: Tensor) -> Tensor:
        """``A^T @ grad``, [H, N], for ``grad`` [R, N]."""
        if self._by_col is None:
            self._by_col = self._group_by_column()
        t_rows, t_offsets, t_values = self._by_col
        return _bag_sum(t_rows, t_offsets, grad.contiguous(), t_values)

    def _group_by_column(self) -> tuple[Tensor, Tensor, Tensor | None]:
        """The events regrouped by column (rows ascending within a column): rows, column offsets, values."""
        group = group_by_column_numpy if self.cols.device.type == "cpu" else group_by_column_torch
        return group(self.rows, self.cols, self.values, self.shape[1])


def group_by_column_numpy(rows: Tensor, cols: Tensor, values: Tensor | None,
                          width: int) -> tuple[Tensor, Tensor, Tensor | None]:
    """Events (row-sorted) regrouped by column on the CPU: rows, column offsets, values."""
    c = cols.numpy()
    # NumPy's stable argsort is a radix sort for 8/16-bit keys, much faster than a comparison sort.
    order = np.argsort(c.astype(np.uint8 if width <= 1 << 8 else np.uint16 if width <= 1 << 16 else np.int64),
                       kind="stable")
    offsets = np.zeros(width, dtype=rows.numpy().dtype)
    np.cumsum(np.bincount(c, minlength=width)[:-1], out=offsets[1:])
    t_values = None if values is None else torch.from_numpy(values.numpy()[order])
    return torch.from_numpy(rows.numpy()[order]), torch.from_numpy(offsets), t_values


def group_by_column_torch(rows: Tensor, cols: Tensor, values: Tensor | None,
                          width: int) -> tuple[Tensor, Tensor, Tensor | None]:
    """The same with torch operations only (any device, nothing read back to the host)."""
    order = torch.sort(cols, stable=True).indices
    # counted by scatter_add: torch.bincount on CUDA reads the maximum back to the host
    counts = torch.zeros(width, dtype=cols.dtype, device=cols.device)
    counts.scatter_add_(0, cols, torch.ones_like(cols))
    offsets = torch.zeros(width, dtype=rows.dtype, device=rows.device)
    torch.cumsum(counts[:-1], 0, out=offsets[1:])
    return rows[order], offsets, None if values is None else values[order]


def step_matmul(flat: np.ndarray, table: Tensor, batch: int) -> Tensor:
    """``S @ table`` for a 0/1 matrix S [B, K] given by its nonzeros' flat positions (ascending, NumPy);
    each output row sums the selected rows of ``table`` in ascending order."""
    rows, cols = np.divmod(flat, table.shape[0])
    return F.embedding_bag(torch.from_numpy(cols), table, _offsets(rows, batch), mode="sum")


class EventProjection(torch.autograd.Function):
    """``a @ w`` with ``a`` [R, K] given by its :class:`Events`; ``a`` itself (dense, or None for input data)
    is only needed for its gradient ``grad @ w^T``."""

    @staticmethod
    def forward(ctx, a: Tensor | None, w: Tensor, events: Events) -> Tensor:
        ctx.save_for_backward(w)
        ctx.events = events
        return events.matmul(w)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (w,) = ctx.saved_tensors
        grad_a = matmul(grad, w.t()) if ctx.needs_input_grad[0] else None
        grad_w = ctx.events.t_matmul(grad) if ctx.needs_input_grad[1] else None
        return grad_a, grad_w, None


def project(a: Tensor | None, w: Tensor, events: Events | None) -> Tensor:
    """``a @ w`` for ``a`` [R, K] (or None with ``events``), event-driven when ``events`` are given."""
    if events is None:
        return matmul(a, w)
    if torch.is_grad_enabled() and ((a is not None and a.requires_grad) or w.requires_grad):
        return EventProjection.apply(a, w, events)
    return events.matmul(w)


def to_csr(x: Tensor) -> Tensor:
    """A sparse COO or CSR matrix as CSR (silencing torch's beta-state warning for CSR)."""
    if x.layout == torch.sparse_csr:
        return x
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return x.to_sparse_csr()
