"""The recurrent spiking network: hidden layers of spiking neurons, and a leaky-integrator readout.

    inputs x [B, T, U] -> hidden layer 1 -> ... -> hidden layer L -> readout -> class scores

Hidden layer k (1-based) at time step t gets the input

    I_k[t] = x[t] @ W_1               (k = 1)
    I_k[t] = s_{k-1}[t] @ W_k         (k >= 2: the spikes of the layer below, same step)
    h_k[t] = I_k[t] + s_k[t-1] @ V_k  (the layer's own spikes of the previous step; no V without recurrence)

and its neurons (``model.neuron``: :class:`~spikecl.models.neurons.LIF`, the paper's, or
:class:`~spikecl.models.neurons.AdLIF`, or any :class:`~spikecl.models.neurons.Neuron`) turn h_k[t] into
their spikes s_k[t]. The readout integrates a[t] = s_L[t] @ W_out without spiking
(:class:`~spikecl.models.readout.LeakyReadout`); a class score is the maximum of its record over time. Every
state starts at zero for every sample. No biases. The synapses (W, V, W_out) are the network's, drawn
~ N(0, (weight_scale / sqrt(fan_in))^2); the neurons own their constants and parameters.
:mod:`spikecl.models.reference` writes the whole network out step by step: the oracle of the tests.

Because layer k+1 at step t only needs layer k's spikes at step t, each layer runs over all steps before the
next one starts: a feed-forward product is one product per layer, and each layer's neurons run their steps
in one fast loop (:meth:`~spikecl.models.neurons.Neuron.run`). Tensors are time-major [T, B, H] inside.
On a CPU, products with sparse operands (the binned input, the spikes) are event-driven
(:mod:`spikecl.models.sparse`); every float sum is added in an order independent of the number of CPU
threads, so a seed gives the same numbers with any thread count.

The same network runs from raw input (:meth:`RSNN.forward`), returns the activity at a latent depth
(:meth:`RSNN.latent`; 0: the input current x @ W_1, d >= 1: the spikes of hidden layer d), and runs from
such stored activity with the layers below skipped (:meth:`RSNN.from_latent`), which is what latent replay
needs. Everything else outside this package learns about the network through its public methods
(activity, synapses, neuron operations, time scaling, the readout's class columns), never its attributes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spikecl.errors import ConfigError
from spikecl.models.neurons.base import Neuron
from spikecl.models.readout import LeakyReadout
from spikecl.models.sparse import Events, matmul, project, to_csr
from spikecl.utils import checks


class RSNN(nn.Module):
    """Recurrent spiking network (see the module docstring). Every argument but ``nb_outputs`` comes from the
    config (``conf/model/*.yaml``), which holds the defaults.

    Args:
        nb_inputs: input units U.
        hidden: widths of the hidden layers.
        nb_outputs: readout units (classes).
        recurrent: whether hidden layers have recurrent weights V.
        weight_scale: every hidden layer's weight matrix (W, V) ~ N(0, (weight_scale / sqrt(fan_in))^2).
        readout_scale: the same for W_out.
        dropout: while training (``model.train()`` with autograd on), each hidden layer's spikes that feed the
            next trained product (the next layer, the readout; stored spikes too) are zeroed with this
            probability and the others scaled by 1 / (1 - dropout); 0: never (the paper).
        neuron: builds one layer's neurons, called as ``neuron(width=H)`` (a class or ``functools.partial``;
            the config's ``model.neuron`` with ``_partial_: true``).
        readout: the readout filters.

    Parameters are named as in the paper: ``w[k]`` is W_{k+1}, ``v[k]`` is V_{k+1}, ``w_out`` the readout;
    ``neurons[k]`` holds hidden layer k+1's neurons (and their parameters, if any).
    """

    def __init__(self, *, nb_inputs: int, hidden: Sequence[int], nb_outputs: int, recurrent: bool,
                 weight_scale: float, readout_scale: float, dropout: float, neuron: Callable[..., Neuron],
                 readout: LeakyReadout) -> None:
        super().__init__()
        if nb_outputs is None:
            raise ValueError("RSNN needs nb_outputs (model.nb_outputs: null is filled in from the data set)")
        _check_args(nb_inputs, hidden, nb_outputs, recurrent, weight_scale, readout_scale, dropout)
        self.dropout = float(dropout)
        self.sizes = [int(nb_inputs), *[int(h) for h in hidden]]
        self.nb_outputs = int(nb_outputs)
        self.weight_scale, self.readout_scale = float(weight_scale), float(readout_scale)
        self.w = nn.ParameterList(nn.Parameter(torch.empty(a, b)) for a, b in zip(self.sizes[:-1], self.sizes[1:]))
        self.v = nn.ParameterList(nn.Parameter(torch.empty(h, h)) for h in self.sizes[1:]) if recurrent else None
        self.w_out = nn.Parameter(torch.empty(self.sizes[-1], self.nb_outputs))
        self.neurons = nn.ModuleList(_build_neurons(neuron, self.sizes[1:]))
        self.readout = readout
        self.reset_parameters()

    @property
    def nb_layers(self) -> int:
        """Number of hidden (spiking) layers L; latent depths are 0..L."""
        return len(self.sizes) - 1

    @property
    def device(self) -> torch.device:
        """Where the parameters are."""
        return self.w_out.device

    def reset_parameters(self) -> None:
        """Every weight matrix ~ N(0, (scale / sqrt(fan_in))^2), fan_in being its first dimension and scale
        ``readout_scale`` for W_out, ``weight_scale`` for the others, in the order of ``parameters()`` (W_out,
        W_1.., V_1..: a module's own parameters come before its lists'); then each layer's neurons draw their
        own parameters."""
        with torch.no_grad():
            self.w_out.normal_(0.0, self.readout_scale / math.sqrt(self.w_out.shape[0]))
            for p in [*self.w, *(self.v if self.v is not None else [])]:
                p.normal_(0.0, self.weight_scale / math.sqrt(p.shape[0]))
        for neurons in self.neurons:
            neurons.reset_parameters()

    # ------------------------------------------------------------------------------ what runs above a depth

    def latent_width(self, depth: int) -> int:
        """Width of the activity stored at ``depth`` (0: the current into layer 1; d: layer d's spikes)."""
        self._check_depth(depth)
        return self.sizes[max(depth, 1)]

    def layer_parameters(self, depth: int | None) -> list[nn.Parameter]:
        """Parameters that run above ``depth`` (all of them for None, i.e. raw input)."""
        if depth is None:
            return list(self.parameters())
        self._check_depth(depth)
        # depth 0 keeps W1 frozen but trains V1 and layer 1's neurons; depth d >= 1 trains the layers d+1..
        # (0-based index d..)
        params = [self.w[k] for k in range(max(depth, 1), self.nb_layers)]
        if self.v is not None:
            params += [self.v[k] for k in range(depth, self.nb_layers)]
        params += [p for k in range(depth, self.nb_layers) for p in self.neurons[k].parameters()]
        return params + [self.w_out]

    @contextmanager
    def time_scaled(self, r: float, threshold_scale: float = 1.0) -> Iterator[RSNN]:
        """Run with one step standing for ``r`` steps (short-time replay): every layer's neurons and the readout
        take the constants of r steps in one (each neuron type says how: :meth:`Neuron.time_scaled`), the
        thresholds times ``threshold_scale``; the model's own constants after the block. A backward pass
        after the block is still right: every layer keeps the constants it ran with."""
        with ExitStack() as stack:
            for neurons in self.neurons:
                stack.enter_context(neurons.time_scaled(r, threshold_scale))
            stack.enter_context(self.readout.time_scaled(r))
            yield self

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
        spikes, events = self._layer(z.transpose(0, 1), 0, depth > 1)
        for k in range(1, depth):
            spikes, events = self._layer(self._project(spikes, events, self.w[k]), k, k + 1 < depth)
        return spikes.transpose(0, 1).contiguous()

    def from_latent(self, z: Tensor, depth: int, return_spikes: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Readout record [B, T+1, C] from activity stored at ``depth``; the layers below are skipped and the
        layers above start from their initial state.

        ``z`` is float, or bool for spikes (d >= 1). With ``return_spikes`` also returns the last hidden
        layer's spikes [B, T, H_L] (for regularisers).
        """
        spikes, fed, events, _ = self._above(z, depth, float_entry=return_spikes)
        out = self.readout(self._project(fed, events, self.w_out)).transpose(0, 1)
        return (out, spikes.transpose(0, 1)) if return_spikes else out

    def hidden_spikes(self, x: Tensor, depth: int | None = None, nb_steps: int | None = None) -> list[Tensor]:
        """Spikes [B, T, H_k] of every hidden layer that runs (for activity figures and plots, not training):
        from raw input ``x`` (``depth`` None: every layer; dense [B, T, U] or sparse [B*T, U] with
        ``nb_steps``), or from activity stored at ``depth`` d [B, T, H_d] (the layers d+1..L; none for d = L).
        These are the spikes the model computes in :meth:`from_latent` (same products, same order)."""
        if depth is None:
            x, depth = self.input_current(x, nb_steps), 0
        elif x.layout != torch.strided or x.dim() != 3:
            raise ValueError(f"activity at depth {depth} must be a dense [B, T, H] tensor")
        if depth == self.nb_layers:
            self._check_depth(depth)
            return []
        *_, layers = self._above(x, depth, keep=True)
        return [s.transpose(0, 1) for s in layers]

    # -------------------------------------------------------------------- what measurements are made of

    def synapses(self) -> dict[str, Tensor]:
        """Every weight matrix [inputs, outputs] (detached), by the product it serves in network order:
        ``ff_l{k}`` (into hidden layer k, from the input or layer k-1), ``rec_l{k}`` (layer k's recurrence,
        if any), ``readout``."""
        out: dict[str, Tensor] = {}
        for k in range(self.nb_layers):
            out[f"ff_l{k + 1}"] = self.w[k].detach()
            if self.v is not None:
                out[f"rec_l{k + 1}"] = self.v[k].detach()
        out["readout"] = self.w_out.detach()
        return out

    def state_updates(self) -> dict[str, int]:
        """Neuron state variables updated per step (neuron operations, not synaptic ones): ``l{k}`` for
        hidden layer k (width x the neuron's state variables: 2 for LIF's syn and mem, 2 for adLIF's mem
        and adaptation), ``readout`` (classes x its two filters)."""
        out = {f"l{k + 1}": neurons.width * neurons.state_updates for k, neurons in enumerate(self.neurons)}
        out["readout"] = self.nb_outputs * self.readout.state_updates
        return out

    # ------------------------------------------------------------------------------------------ inside

    def _above(self, z: Tensor, depth: int, keep: bool = False,
               float_entry: bool = False) -> tuple[Tensor, Tensor, Events | None, list[Tensor]]:
        """Run the hidden layers above ``depth`` from the activity there, [B, T, H_depth]: the last layer's
        time-major spikes, what of them feeds the readout (after dropout) and its events, and (with ``keep``)
        every layer's spikes. ``float_entry``: stored spikes at depth L are returned as float (they are the
        last layer's spikes)."""
        self._check_depth(depth)
        z = z.transpose(0, 1)  # time-major from here on: every step is a [B, H] block
        if depth == 0:
            spikes, events = self._layer(z, 0)
            layers = [spikes]
        else:  # stored activity may be decoded spike counts, not only 0/1
            events = Events.of_spikes(z, self._consumer_width(depth - 1), binary=False)
            as_float = events is None or (float_entry and depth == self.nb_layers) or self._dropping()
            spikes = z.to(self.w_out.dtype) if as_float and not z.is_floating_point() else z
            layers = []
        fed, events = self._drop(spikes, events, max(depth, 1) - 1)
        for k in range(max(depth, 1), self.nb_layers):
            spikes, events = self._layer(self._project(fed, events, self.w[k]), k)
            fed, events = self._drop(spikes, events, k)
            layers.append(spikes)
        return spikes, fed, events, layers if keep else []

    def _dropping(self) -> bool:
        """Whether this forward pass drops spikes (training with dropout)."""
        return self.dropout > 0 and self.training and torch.is_grad_enabled()

    def _drop(self, spikes: Tensor, events: Events | None, k: int) -> tuple[Tensor, Events | None]:
        """Layer k's spikes (0-based) as they feed the next product, with their events: dropped out while
        training (:attr:`dropout`), else as they are."""
        if not self._dropping():
            return spikes, events
        fed = F.dropout(spikes, self.dropout, training=True)
        return fed, Events.of_spikes(fed, self._consumer_width(k), binary=False)

    def _layer(self, current: Tensor, k: int, consumed: bool = True) -> tuple[Tensor, Events | None]:
        """Spikes [T, B, H] of hidden layer k (0-based) from its time-major feed-forward current, and their
        events (wanted only if the spikes are ``consumed`` by the next layer or the readout)."""
        v = self.v[k] if self.v is not None else None
        return self.neurons[k].run(current, v, self._consumer_width(k) if consumed else 0)

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

    def _check_depth(self, depth: int) -> None:
        if not 0 <= depth <= self.nb_layers:
            raise ValueError(f"latent depth {depth} is outside 0..{self.nb_layers} for {self.nb_layers} hidden layers")


def _build_neurons(neuron: Callable[..., Neuron], widths: Sequence[int]) -> list[Neuron]:
    """One neuron module per hidden layer; a bad neuron argument names ``neuron.<key>``."""
    if isinstance(neuron, nn.Module) or not callable(neuron):
        raise ConfigError(f"neuron={type(neuron).__name__} is not valid; it must build one layer's neurons when "
                          "called with width= (in a config: model.neuron._partial_=true)")
    layers = []
    for width in widths:
        try:
            layer = neuron(width=width)
        except ConfigError as exc:
            raise ConfigError(f"neuron.{exc}") from None
        if not isinstance(layer, Neuron):
            raise ConfigError(f"neuron built a {type(layer).__name__}, not a spikecl.models.neurons.Neuron")
        layers.append(layer)
    return layers


def _check_args(nb_inputs: int, hidden: Sequence[int], nb_outputs: int, recurrent: bool, weight_scale: float,
                readout_scale: float, dropout: float) -> None:
    """One-line errors for arguments a config can get wrong."""
    checks.integer("nb_inputs", nb_inputs, 1)
    if not hidden:
        raise ConfigError("hidden=[] is not valid; give at least one hidden layer width, e.g. [200,100,50]")
    for i, h in enumerate(hidden):
        checks.integer(f"hidden[{i}]", h, 1)
    checks.integer("nb_outputs", nb_outputs, 1)
    checks.boolean("recurrent", recurrent)
    checks.number("weight_scale", weight_scale)
    checks.number("readout_scale", readout_scale)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ConfigError(f"dropout={dropout!r} is not valid; it must be a number in [0, 1), e.g. 0.1")
