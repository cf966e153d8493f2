"""The paper's recurrent spiking network (seed-spec 2): recurrent LIF layers and a leaky-integrator readout.

Per hidden layer k and time step t (all states start at zero):

    h[t]     = I[t] + s[t-1] @ V                 input current plus recurrence from the layer's last spikes
    s[t]     = H(mem[t] - threshold)             the spike is read from the membrane *before* this step's update
    syn[t+1] = alpha * syn[t] + h[t]
    mem[t+1] = (beta * mem[t] + syn[t]) * (1 - s[t])   the membrane sees the *previous* synaptic current;
                                                        the reset to zero carries no gradient

with alpha = exp(-dt / tau_syn), beta = exp(-dt / tau_mem). Layer 1 gets I = x @ W1, layer k+1 gets
I = s_k @ W_{k+1} of the same step. The readout integrates a[t] = s_L[t] @ W_out through the same two
filters without spiking; its record out[0..T] starts with the initial 0, and a class score is the maximum
of out over time. H has the SuperSpike surrogate gradient 1 / (scale * |mem - threshold| + 1)^2.
:mod:`spikecl.models.lif_reference` writes all of this out step by step; it is the oracle of the tests.

Because layer k+1 at step t only needs layer k's spikes at step t, each layer runs over all steps before the
next one starts: the feed-forward products become one product per layer, and the per-step loop inside a
layer (:class:`LIFRecurrence`) has a hand-written backward pass instead of an autograd graph of thousands of
small operations. Tensors are time-major [T, B, H] inside, so every step is one contiguous block. On a CPU,
products with sparse operands (the binned input, the spikes) are event-driven (:mod:`spikecl.models.sparse`)
and a wide layer sums its recurrent input over the previous step's spikes only. The state updates are the
paper's operations in its order; only sums inside products are added in another order, so results agree
with the step-by-step formulation to float32 rounding (a spike can differ only where a membrane lands
within rounding of the threshold). Every float sum is added in an order independent of the number of
CPU threads (:mod:`spikecl.models.sparse`), so a seed gives the same numbers with any thread count.

The same network runs from raw input, returns the activity at a depth (0: the input current x @ W1,
d >= 1: the spikes of hidden layer d), and runs from such stored activity with the layers below skipped,
which is what latent replay needs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from spikecl.errors import ConfigError
from spikecl.models.sparse import Events, matmul, one_thread, project, step_matmul, to_csr
from spikecl.utils import checks

# The recurrent input s[t-1] @ V of a layer at least this wide is summed over the spikes only (on a CPU, per
# step, while at most EVENT_STEP_DENSITY of the [B, H] spikes are ones): cheaper than the dense product there,
# and the positions it finds give the layer's Events for the products with the next layer for free.
EVENT_MIN_WIDTH = 128
EVENT_STEP_DENSITY = 0.1


class LIFRun(NamedTuple):
    """One LIF layer over all steps: spikes [T, B, H], membranes before each update (if kept), and each step's
    spike positions (flat indices into the [B, H] step, NumPy) where the recurrence was event-driven."""

    spikes: Tensor
    membranes: Tensor | None
    nonzeros: list[np.ndarray] | None


def lif_spikes(current: Tensor, recurrent: Tensor | None, alpha: float, beta: float, threshold: float,
               keep_membrane: bool = False) -> LIFRun:
    """Run one LIF layer over all steps of a time-major current [T, B, H]: computes exactly
    :func:`spikecl.models.lif_reference.lif_layer` (spikes, and with ``keep_membrane`` the membranes they
    were read from), without autograd; only the sums inside s[t-1] @ V may be added in another order.

    Every step writes into preallocated storage (the membrane trace doubles as the state), so nothing is
    copied. The arithmetic is the paper's, in its order: (beta * mem + syn) and (alpha * syn + h) are rounded
    as there, h = (s @ V) + I, and the reset ``m - m * s`` is exact for s in {0, 1}.
    """
    steps, batch, width = current.shape
    spikes = current.new_empty(steps, batch, width)
    mems = current.new_empty(steps if keep_membrane else 2, batch, width)
    mems[0].zero_()
    syn = current.new_zeros(batch, width)
    h = current.new_empty(batch, width)
    # Per-step views made at once, and the constants as 0-dim tensors: a Python number would be wrapped into
    # a new tensor by every call; the values (rounded to the tensors' dtype) are the same.
    spk, cur, state = spikes.unbind(0), current.unbind(0), mems.unbind(0)
    a, b, thr = (torch.tensor(c, dtype=current.dtype) for c in (alpha, beta, threshold))
    event_driven = recurrent is not None and current.device.type == "cpu" and width >= EVENT_MIN_WIDTH
    nonzeros: list[np.ndarray] | None = [] if event_driven else None
    spikes_np = spikes.numpy() if event_driven else None  # the same memory, scanned by NumPy (fastest here)
    dense_above = EVENT_STEP_DENSITY * batch * width
    states = state if keep_membrane else [state[t % 2] for t in range(steps)]
    gt, mul, addmm = torch.gt, torch.mul, torch.addmm
    with one_thread(current.device):
        for t in range(steps):
            mem, s = states[t], spk[t]
            gt(mem, thr, out=s)
            if nonzeros is not None:
                nonzeros.append(np.flatnonzero(spikes_np[t] != 0))
            if t + 1 == steps:  # the last update would only feed states that are never read
                break
            nxt = states[t + 1]
            # mem[t+1] = (beta * mem[t] + syn[t]) with the reset to zero where the neuron fired; syn[t] is
            # advanced only below
            mul(mem, b, out=nxt).add_(syn).addcmul_(nxt, s, value=-1.0)
            if recurrent is None or t == 0:
                syn.mul_(a).add_(cur[t])
            elif nonzeros is not None and len(nonzeros[t - 1]) <= dense_above:
                syn.mul_(a).add_(step_matmul(nonzeros[t - 1], recurrent, batch).add_(cur[t]))
            else:
                syn.mul_(a).add_(addmm(cur[t], spk[t - 1], recurrent, out=h))
    return LIFRun(spikes, mems if keep_membrane else None, nonzeros)


def spike_events(run: LIFRun, product_width: int) -> Events | None:
    """Events of a layer's spikes for products of total width ``product_width`` where they pay off: from the
    positions the event-driven recurrence found, else by scanning the spikes. The choice depends only on
    the spikes' density and the width, as it does for the same spikes stored and run from (latent replay),
    so both paths add the same numbers in the same order."""
    if run.nonzeros is None:
        return Events.of_spikes(run.spikes, product_width)
    _, batch, width = run.spikes.shape
    density = sum(len(nz) for nz in run.nonzeros) / run.spikes.numel()
    if not Events.pay_off(density, product_width):
        return None
    return Events.from_step_nonzeros(run.nonzeros, batch, width)


class LIFRecurrence(torch.autograd.Function):
    """Spikes of one LIF layer over all steps from its input current, with backpropagation through time:
    :func:`lif_spikes` forward, and backward the gradients autograd computes through
    :func:`spikecl.models.lif_reference.lif_layer`, by a hand-written loop.

    Tensors are time-major: ``current`` is [T, B, H]. ``recurrent`` is V ([H, H]) or None. Also returns the
    spikes' :class:`~spikecl.models.sparse.Events` (None where dense products are the better choice), used
    for the gradient of V and by the products of total width ``product_width`` that consume the spikes.
    """

    @staticmethod
    def forward(ctx, current: Tensor, recurrent: Tensor | None, alpha: float, beta: float,
                threshold: float, scale: float, product_width: int) -> tuple[Tensor, Events | None]:
        run = lif_spikes(current, recurrent, alpha, beta, threshold, keep_membrane=True)
        spikes, mems = run.spikes, run.membranes
        own = spikes.shape[-1] if ctx.needs_input_grad[1] else 0  # the gradient of V is a product with them
        events = spike_events(run, product_width + own)
        ctx.save_for_backward(spikes, mems, recurrent)
        ctx.constants = (alpha, beta, threshold, scale)
        ctx.events = events
        return spikes, events

    @staticmethod
    def backward(ctx, grad_spikes: Tensor, _grad_events: None):
        spikes, mems, recurrent = ctx.saved_tensors
        alpha, beta, threshold, scale = ctx.constants
        steps, batch, width = spikes.shape
        grad_spikes = grad_spikes.contiguous()
        # SuperSpike: d spike / d mem = 1 / den, den = (scale * |mem - threshold| + 1)^2, divided as the reference
        den = mems.sub(threshold).abs_().mul_(scale).add_(1.0).square_()
        # grad_current[t] = dL/dh[t] = dL/dsyn[t+1]. The last step's current reaches no spike; one more zero
        # step after it lets the gradient of V pair s[t] with grad_current[t+1] for every t.
        padded = grad_spikes.new_empty(steps + 1, batch, width)
        padded[steps - 1:].zero_()
        grad_current = padded[:steps]
        grad_mem = grad_spikes.new_zeros(batch, width)   # dL/dmem[t+1]
        carried = grad_spikes.new_empty(batch, width)    # dL/dmem[t+1] through the (non-reset) update
        grad_s = grad_spikes.new_empty(batch, width)
        vt = recurrent.t() if recurrent is not None else None
        g_out, g_cur, spk, dens = grad_spikes.unbind(0), padded.unbind(0), spikes.unbind(0), den.unbind(0)
        addmm, addcmul, add, div = torch.addmm, torch.addcmul, torch.add, torch.div
        # t = 0 is left out: mem[0] and syn[0] are constants, so nothing computed there has a gradient to pass
        with one_thread(grad_spikes.device):
            for t in range(steps - 1, 0, -1):
                if vt is not None and t + 1 < steps:         # s[t] also feeds h[t+1] through V
                    gs = addmm(g_out[t], g_cur[t + 1], vt, out=grad_s)
                else:
                    gs = g_out[t]
                addcmul(grad_mem, grad_mem, spk[t], value=-1.0, out=carried)  # no gradient through a reset
                # syn[t+1] = alpha * syn[t] + h[t], mem[t+1] = (beta * mem[t] + syn[t]) * (1 - s[t])
                add(carried, g_cur[t], alpha=alpha, out=g_cur[t - 1])
                div(gs, dens[t], out=grad_mem).add_(carried, alpha=beta)
        grad_recurrent = None
        if recurrent is not None and ctx.needs_input_grad[1]:
            following = padded[1:].view(-1, width)  # row t*B + b holds grad_current[t+1, b]
            if ctx.events is not None:
                grad_recurrent = ctx.events.t_matmul(following)
            else:
                grad_recurrent = matmul(spikes.view(-1, width).t(), following)
        return grad_current, grad_recurrent, None, None, None, None, None


def readout_kernel(steps: int, alpha: float, beta: float, dtype: torch.dtype = torch.float32,
                   device: torch.device | str | None = None) -> Tensor:
    """Matrix K [steps+1, steps] with out = K @ a for the readout's two leaky filters.

    Column tau is the response of flt[t+1] = alpha * flt[t] + a[t], out[t+1] = beta * out[t] + flt[t]
    to a unit impulse a[tau]; it is computed by running that recursion (in float64) on all impulses at once.
    """
    impulses = torch.eye(steps, dtype=torch.float64)
    flt = torch.zeros(steps, dtype=torch.float64)
    out = torch.zeros(steps + 1, steps, dtype=torch.float64)
    for t in range(steps):
        out[t + 1] = beta * out[t] + flt
        flt = alpha * flt + impulses[t]
    return out.to(dtype=dtype, device=device)


class RSNN(nn.Module):
    """Recurrent LIF network: inputs -> hidden LIF layers -> non-spiking leaky-integrator readout.

    Parameters are named as in the paper: ``w[k]`` is W_{k+1} (feed-forward into hidden layer k+1),
    ``v[k]`` is V_{k+1} (recurrence of hidden layer k+1), ``w_out`` the readout. No biases.
    """

    def __init__(self, nb_inputs: int = 700, hidden: Sequence[int] = (200, 100, 50), nb_outputs: int = 20,
                 recurrent: bool = True, dt: float = 1e-3, tau_syn: float = 5e-3, tau_mem: float = 10e-3,
                 threshold: float = 1.0, surrogate_scale: float = 100.0, weight_scale: float = 0.2) -> None:
        super().__init__()
        if nb_outputs is None:
            raise ValueError("RSNN needs nb_outputs (model.nb_outputs: null is filled in from the data set)")
        _check_args(nb_inputs, hidden, nb_outputs, recurrent, dt=dt, tau_syn=tau_syn, tau_mem=tau_mem,
                    threshold=threshold, surrogate_scale=surrogate_scale, weight_scale=weight_scale)
        self.sizes = [int(nb_inputs), *[int(h) for h in hidden]]
        self.nb_outputs = int(nb_outputs)
        self.alpha = math.exp(-dt / tau_syn)
        self.beta = math.exp(-dt / tau_mem)
        self.threshold = float(threshold)
        self.surrogate_scale = float(surrogate_scale)
        self.weight_scale = float(weight_scale)
        self.w = nn.ParameterList(nn.Parameter(torch.empty(a, b)) for a, b in zip(self.sizes[:-1], self.sizes[1:]))
        self.v = nn.ParameterList(nn.Parameter(torch.empty(h, h)) for h in self.sizes[1:]) if recurrent else None
        self.w_out = nn.Parameter(torch.empty(self.sizes[-1], self.nb_outputs))
        self._kernels: dict[tuple, Tensor] = {}
        self.reset_parameters()

    @property
    def nb_layers(self) -> int:
        """Number of hidden (spiking) layers L; latent depths are 0..L."""
        return len(self.sizes) - 1

    def reset_parameters(self) -> None:
        """Every matrix ~ N(0, (weight_scale / sqrt(fan_in))^2), fan_in being its first dimension."""
        with torch.no_grad():
            for p in self.parameters():
                p.normal_(0.0, self.weight_scale / math.sqrt(p.shape[0]))

    def latent_width(self, depth: int) -> int:
        """Width of the activity stored at ``depth`` (0: the current into layer 1; d: layer d's spikes)."""
        self._check_depth(depth)
        return self.sizes[max(depth, 1)]

    def layer_parameters(self, depth: int | None) -> list[nn.Parameter]:
        """Parameters that run above ``depth`` (all of them for None, i.e. raw input)."""
        if depth is None:
            return list(self.parameters())
        self._check_depth(depth)
        # depth 0 keeps W1 frozen but trains V1; depth d >= 1 trains the layers d+1.. (0-based index d..)
        params = [self.w[k] for k in range(max(depth, 1), self.nb_layers)]
        if self.v is not None:
            params += [self.v[k] for k in range(depth, self.nb_layers)]
        return params + [self.w_out]

    @contextmanager
    def time_scaled(self, r: float, threshold_scale: float = 1.0) -> Iterator[RSNN]:
        """Run with one step standing for ``r`` steps (short-time replay): alpha^r, beta^r (the decay of r
        steps in one) and threshold * ``threshold_scale`` inside the block, the model's own constants after.

        The readout kernels of the scaled constants are cached apart (``_kernels`` is keyed by steps only).
        A backward pass after the block is still right: the LIF layers and the readout keep what they used.
        """
        saved = self.alpha, self.beta, self.threshold, self._kernels
        self.alpha, self.beta = self.alpha ** r, self.beta ** r
        self.threshold = self.threshold * float(threshold_scale)
        self._kernels = self.__dict__.setdefault("_scaled_kernels", {}).setdefault((self.alpha, self.beta), {})
        try:
            yield self
        finally:
            self.alpha, self.beta, self.threshold, self._kernels = saved

    # ------------------------------------------------------------------------- the readout's class columns

    def reset_class_columns(self, classes: Sequence[int], mean: float, std: float,
                            generator: torch.Generator) -> None:
        """Draw the readout weights of every class in ``classes`` afresh ~ N(mean, std), one class after the
        other in the given order from ``generator`` (a CPU generator: the paper's stream of new columns)."""
        with torch.no_grad():
            for c in classes:
                col = torch.empty(self.w_out.shape[0]).normal_(mean, std, generator=generator)
                self.w_out[:, c] = col.to(self.w_out.device)

    def class_column_norms(self) -> Tensor:
        """L2 norm of each class's readout weights, [C] (detached)."""
        return self.w_out.detach().norm(dim=0)

    def scale_class_columns(self, classes: Sequence[int], factor: float | Tensor) -> None:
        """Multiply the readout weights of ``classes`` by ``factor``."""
        with torch.no_grad():
            self.w_out[:, list(classes)] *= factor

    # ----------------------------------------------------------------------------------- forward passes

    def input_current(self, x: Tensor, nb_steps: int | None = None) -> Tensor:
        """I_1 = x @ W1, [B, T, H1]. ``x`` is dense [B, T, inputs] or sparse CSR/COO [B*T, inputs]."""
        w1 = self.w[0]
        if x.layout == torch.strided:
            return matmul(x.reshape(-1, x.shape[-1]), w1).view(*x.shape[:-1], w1.shape[1])
        if nb_steps is None:
            raise ValueError("a sparse input [B*T, inputs] needs nb_steps")
        return project(None, w1, Events.from_csr(to_csr(x))).view(-1, nb_steps, w1.shape[1])

    def forward(self, x: Tensor, nb_steps: int | None = None) -> Tensor:
        """Readout record [B, T+1, C] from raw input (dense [B, T, U] or sparse [B*T, U])."""
        return self.from_latent(self.input_current(x, nb_steps), 0)

    def latent(self, x: Tensor, depth: int, nb_steps: int | None = None) -> Tensor:
        """Activity at ``depth`` for every step, [B, T, H_depth]: the input current (0) or layer spikes."""
        self._check_depth(depth)
        z = self.input_current(x, nb_steps)
        if depth == 0:
            return z
        spikes, events = self._hidden(z.transpose(0, 1), 0, depth > 1)
        for k in range(1, depth):
            spikes, events = self._hidden(self._project(spikes, events, self.w[k]), k, k + 1 < depth)
        return spikes.transpose(0, 1).contiguous()

    def from_latent(self, z: Tensor, depth: int, return_spikes: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Readout record [B, T+1, C] from activity stored at ``depth``; the layers below are skipped.

        ``z`` is float, or bool for spikes (d >= 1). With ``return_spikes`` also returns the last hidden
        layer's spikes [B, T, H_L] (for regularisers).
        """
        self._check_depth(depth)
        z = z.transpose(0, 1)  # time-major from here on: every step is a [B, H] block
        if depth == 0:
            spikes, events = self._hidden(z, 0)
        else:  # stored activity may be decoded spike counts, not only 0/1
            events = Events.of_spikes(z, self._consumer_width(depth - 1), binary=False)
            as_float = events is None or (return_spikes and depth == self.nb_layers)
            spikes = z.to(self.w_out.dtype) if as_float and not z.is_floating_point() else z
        for k in range(max(depth, 1), self.nb_layers):
            spikes, events = self._hidden(self._project(spikes, events, self.w[k]), k)
        out = self._readout(self._project(spikes, events, self.w_out)).transpose(0, 1)
        return (out, spikes.transpose(0, 1)) if return_spikes else out

    def _hidden(self, current: Tensor, k: int, consumed: bool = True) -> tuple[Tensor, Events | None]:
        """Spikes [T, B, H] of hidden layer k (0-based) from its time-major input current, and their events
        (wanted only if the spikes are ``consumed`` by the next layer or the readout)."""
        v = self.v[k] if self.v is not None else None
        width = self._consumer_width(k) if consumed else 0
        current = current.contiguous()
        if torch.is_grad_enabled() and (current.requires_grad or (v is not None and v.requires_grad)):
            return LIFRecurrence.apply(current, v, self.alpha, self.beta, self.threshold, self.surrogate_scale,
                                       width)
        # inference or a frozen layer: no membrane trace to keep
        run = lif_spikes(current, v, self.alpha, self.beta, self.threshold)
        return run.spikes, spike_events(run, width) if consumed else None

    def _consumer_width(self, k: int) -> int:
        """Total output width of the products with layer k's spikes: the next layer's (or the readout's)
        forward product, and its weight gradient when that weight is trained."""
        w = self.w[k + 1] if k + 1 < self.nb_layers else self.w_out
        return w.shape[1] * (2 if torch.is_grad_enabled() and w.requires_grad else 1)

    @staticmethod
    def _project(spikes: Tensor, events: Events | None, w: Tensor) -> Tensor:
        """``spikes @ w`` for time-major spikes [T, B, H], event-driven where ``events`` are known."""
        steps, batch, width = spikes.shape
        # with events, the dense spikes only serve their own gradient
        dense = spikes.reshape(-1, width) if events is None or spikes.requires_grad else None
        return project(dense, w, events).view(steps, batch, w.shape[1])

    def _readout(self, a: Tensor) -> Tensor:
        """Non-spiking readout record [T+1, B, C] from its time-major input a = s_L @ W_out, out[0] = 0."""
        steps, batch, classes = a.shape
        key = (steps, a.dtype, a.device)
        if key not in self._kernels:
            with torch.inference_mode(False):  # built once, also usable by later training steps
                self._kernels[key] = readout_kernel(steps, self.alpha, self.beta, a.dtype, a.device)
        return matmul(self._kernels[key], a.reshape(steps, batch * classes)).view(steps + 1, batch, classes)

    def _check_depth(self, depth: int) -> None:
        if not 0 <= depth <= self.nb_layers:
            raise ValueError(f"latent depth {depth} is outside 0..{self.nb_layers} for {self.nb_layers} hidden layers")


def _check_args(nb_inputs: int, hidden: Sequence[int], nb_outputs: int, recurrent: bool, **positive: float) -> None:
    """One-line errors for arguments a config can get wrong."""
    checks.integer("nb_inputs", nb_inputs, 1)
    if not hidden:
        raise ConfigError("hidden=[] is not valid; give at least one hidden layer width, e.g. [200,100,50]")
    for i, h in enumerate(hidden):
        checks.integer(f"hidden[{i}]", h, 1)
    checks.integer("nb_outputs", nb_outputs, 1)
    checks.boolean("recurrent", recurrent)
    for key, value in positive.items():
        checks.number(key, value)


def class_scores(out: Tensor) -> Tensor:
    """Class score = maximum of the readout record over time, [B, C]."""
    return out.max(dim=1).values
