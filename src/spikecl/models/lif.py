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

Because layer k+1 at step t only needs layer k's spikes at step t, each layer runs over all steps before the
next one starts: the feed-forward products become one large matrix product per layer, and the per-step loop
inside a layer (:class:`LIFRecurrence`) has a hand-written backward pass instead of an autograd graph of
thousands of small operations. Both give the same numbers as the step-by-step formulation.

The same network runs from raw input, returns the activity at a depth (0: the input current x @ W1,
d >= 1: the spikes of hidden layer d), and runs from such stored activity with the layers below skipped,
which is what latent replay needs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn


def lif_spikes(current: Tensor, recurrent: Tensor | None, alpha: float, beta: float, threshold: float,
               keep_membrane: bool = False) -> tuple[Tensor, Tensor | None]:
    """Run one LIF layer over all steps; returns spikes [T, B, H] and, if asked, membranes before each update."""
    steps, batch, width = current.shape
    spikes = current.new_empty(steps, batch, width)
    mems = current.new_empty(steps, batch, width) if keep_membrane else None
    syn = current.new_zeros(batch, width)
    mem = current.new_zeros(batch, width)
    h = current.new_empty(batch, width)
    for t in range(steps):
        if recurrent is not None and t > 0:
            torch.addmm(current[t], spikes[t - 1], recurrent, out=h)
        else:
            h.copy_(current[t])
        if mems is not None:
            mems[t] = mem
        fired = mem > threshold
        spikes[t] = fired
        mem.mul_(beta).add_(syn).masked_fill_(fired, 0.0)  # uses syn[t], advanced only below
        syn.mul_(alpha).add_(h)
    return spikes, mems


class LIFRecurrence(torch.autograd.Function):
    """Spikes of one LIF layer over all steps from its input current, with backpropagation through time.

    Tensors are time-major: ``current`` is [T, B, H]. ``recurrent`` is V ([H, H]) or None.
    """

    @staticmethod
    def forward(ctx, current: Tensor, recurrent: Tensor | None, alpha: float, beta: float,
                threshold: float, scale: float) -> Tensor:
        spikes, mems = lif_spikes(current, recurrent, alpha, beta, threshold, keep_membrane=True)
        ctx.save_for_backward(spikes, mems, recurrent)
        ctx.constants = (alpha, beta, threshold, scale)
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes: Tensor):
        spikes, mems, recurrent = ctx.saved_tensors
        alpha, beta, threshold, scale = ctx.constants
        steps, batch, width = spikes.shape
        surrogate = (mems - threshold).abs_().mul_(scale).add_(1.0).pow_(-2)
        keep = 1.0 - spikes
        grad_current = grad_spikes.new_empty(steps, batch, width)
        grad_mem = grad_spikes.new_zeros(batch, width)   # dL/dmem[t+1]
        grad_syn = grad_spikes.new_zeros(batch, width)   # dL/dsyn[t+1]
        grad_s = grad_spikes.new_empty(batch, width)
        for t in range(steps - 1, -1, -1):
            grad_current[t] = grad_syn                     # syn[t+1] = alpha * syn[t] + h[t]
            if recurrent is not None and t + 1 < steps:     # s[t] feeds h[t+1] through V
                torch.addmm(grad_spikes[t], grad_current[t + 1], recurrent.t(), out=grad_s)
            else:
                grad_s.copy_(grad_spikes[t])
            carried = grad_mem * keep[t]
            grad_mem = grad_s * surrogate[t] + beta * carried
            grad_syn = alpha * grad_syn + carried
        grad_recurrent = None
        if recurrent is not None and ctx.needs_input_grad[1]:
            grad_recurrent = spikes[:-1].reshape(-1, width).t() @ grad_current[1:].reshape(-1, width)
        return grad_current, grad_recurrent, None, None, None, None


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

    # ----------------------------------------------------------------------------------- forward passes

    def input_current(self, x: Tensor, nb_steps: int | None = None) -> Tensor:
        """I_1 = x @ W1, [B, T, H1]. ``x`` is dense [B, T, inputs] or sparse CSR/COO [B*T, inputs]."""
        w1 = self.w[0]
        if x.layout == torch.strided:
            return x @ w1
        if nb_steps is None:
            raise ValueError("a sparse input [B*T, inputs] needs nb_steps")
        return torch.sparse.mm(x, w1).view(-1, nb_steps, w1.shape[1])

    def forward(self, x: Tensor, nb_steps: int | None = None) -> Tensor:
        """Readout record [B, T+1, C] from raw input (dense [B, T, U] or sparse [B*T, U])."""
        return self.from_latent(self.input_current(x, nb_steps), 0)

    def latent(self, x: Tensor, depth: int, nb_steps: int | None = None) -> Tensor:
        """Activity at ``depth`` for every step, [B, T, H_depth]: the input current (0) or layer spikes."""
        self._check_depth(depth)
        z = self.input_current(x, nb_steps)
        for k in range(depth):
            z = self._hidden(z if k == 0 else z @ self.w[k], k)
        return z

    def from_latent(self, z: Tensor, depth: int, return_spikes: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Readout record [B, T+1, C] from activity stored at ``depth``; the layers below are skipped.

        With ``return_spikes`` also returns the last hidden layer's spikes [B, T, H_L] (for regularisers).
        """
        self._check_depth(depth)
        spikes = z if depth > 0 else self._hidden(z, 0)
        for k in range(max(depth, 1), self.nb_layers):
            spikes = self._hidden(spikes @ self.w[k], k)
        out = self._readout(spikes)
        return (out, spikes) if return_spikes else out

    def _hidden(self, current: Tensor, k: int) -> Tensor:
        """Spikes [B, T, H] of hidden layer k (0-based) from its feed-forward input current [B, T, H]."""
        v = self.v[k] if self.v is not None else None
        current = current.transpose(0, 1).contiguous()
        if torch.is_grad_enabled() and (current.requires_grad or (v is not None and v.requires_grad)):
            spikes = LIFRecurrence.apply(current, v, self.alpha, self.beta, self.threshold, self.surrogate_scale)
        else:  # inference or a frozen layer: no membrane trace to keep
            spikes, _ = lif_spikes(current, v, self.alpha, self.beta, self.threshold)
        return spikes.transpose(0, 1)

    def _readout(self, spikes: Tensor) -> Tensor:
        """Non-spiking readout record [B, T+1, C], out[:, 0] = 0."""
        a = spikes @ self.w_out
        key = (a.shape[1], a.dtype, a.device)
        if key not in self._kernels:
            with torch.inference_mode(False):  # built once, also usable by later training steps
                self._kernels[key] = readout_kernel(a.shape[1], self.alpha, self.beta, a.dtype, a.device)
        return torch.einsum("st,btc->bsc", self._kernels[key], a)

    def _check_depth(self, depth: int) -> None:
        if not 0 <= depth <= self.nb_layers:
            raise ValueError(f"latent depth {depth} is outside 0..{self.nb_layers} for {self.nb_layers} hidden layers")


def class_scores(out: Tensor) -> Tensor:
    """Class score = maximum of the readout record over time, [B, C]."""
    return out.max(dim=1).values
