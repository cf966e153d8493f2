"""Class-balanced loss: every class present in a minibatch weighs the same in its loss.

The loop's loss of a minibatch of B samples is the mean NLL, (1 / B) * sum_i l_i with
l_i = -log softmax(s_i)[y_i] and s_i the class scores. When replay and new data share minibatches
(``mix=mixed``) the classes come in unequal numbers (a new class's few samples against a buffer of many
old ones, or the reverse with a small buffer), and the mean weighs each class by its count. This plugin
makes the total the class-balanced NLL

    L_bal = sum_i w_i l_i,    w_i = 1 / (K * n_{y_i}),

with n_c the number of samples of class c in the minibatch and K the number of classes present in it:
each present class gets weight 1 / K, shared equally by its samples, and the weights sum to 1 (a class
absent from the minibatch gets nothing, so the weights are not those of all classes seen so far). With
``strength`` lambda, the plugin's term is

    lambda * (L_bal - L_mean),

so that the loop's total is (1 - lambda) * L_mean + lambda * L_bal (plus the spike regulariser and the
other plugins' terms); lambda = 1 (the default) gives exactly L_bal. Both NLLs are computed from the
class scores ``out`` with ``log_softmax``, as the loop's. A minibatch whose present classes all have the
same count has w_i = 1 / B: the term is then None (exactly the loop's loss). Replayed and new samples are
treated alike: the weights depend on the labels only.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from spikecl.cl.context import Context
from spikecl.cl.minibatch import Batch
from spikecl.cl.plugin import Plugin
from spikecl.errors import ConfigError
from spikecl.utils import checks


def class_balanced_weights(labels: Tensor) -> Tensor:
    """w_i = 1 / (K * n_{y_i}) for labels [B] (float32, sums to 1; see the module docstring)."""
    _, inverse, counts = torch.unique(labels, return_inverse=True, return_counts=True)
    return 1.0 / (counts.numel() * counts[inverse].to(torch.float32))


class ClassBalancedLoss(Plugin):
    """Replace the mean NLL of every minibatch by the class-balanced NLL (see the module docstring).

    Args:
        strength: lambda, 1 for the class-balanced NLL alone, 0 for the loop's mean NLL.
    """

    def __init__(self, *, strength: float) -> None:
        self.strength = checks.number("strength", strength, positive=False)

    def check(self, key: str, latent_depth: int | None, plugins: Sequence[Plugin]) -> None:
        other = next((p for p in plugins if p.replaces_criterion), None)
        if other is not None:  # its term corrects the loop's mean NLL, which another plugin replaces
            raise ConfigError(f"{key}.plugins: ClassBalancedLoss cannot run with {type(other).__name__}, which "
                              "replaces the loss it corrects; remove one of them")

    def loss(self, ctx: Context, batch: Batch, out: Tensor) -> Tensor | None:
        labels = batch.labels
        counts = torch.bincount(labels)
        present = counts[counts > 0]
        if self.strength == 0 or bool((present == present[0]).all()):
            return None
        nll = -F.log_softmax(out, dim=1).gather(1, labels.unsqueeze(1)).squeeze(1)
        weights = class_balanced_weights(labels).to(nll.dtype)
        return self.strength * ((weights * nll).sum() - nll.mean())
