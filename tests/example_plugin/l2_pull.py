"""mypkg/l2_pull.py: pull the trained weights towards the pretrained ones, weight / 2 * sum (theta - theta0)^2."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from spikecl.cl import Batch, Context, Plugin


class L2Pull(Plugin):
    """Penalise the squared distance of the trained parameters to the pretrained ones."""

    def __init__(self, weight: float = 1.0) -> None:
        self.weight = float(weight)
        self.anchor: dict[str, Tensor] = {}  # parameter name -> pretrained value

    def before_task(self, ctx: Context, task: int) -> None:
        if not self.anchor:  # the first task only: every later task is pulled towards the same weights
            self.anchor = {name: p.detach().clone() for name, p in ctx.model.named_parameters()}

    def loss(self, ctx: Context, batch: Batch, out: Tensor) -> Tensor | None:
        trained = {id(p) for p in ctx.trainable}
        terms = [(p - self.anchor[name]).square().sum()
                 for name, p in ctx.model.named_parameters() if id(p) in trained]
        return self.weight / 2 * sum(terms) if terms else None

    def state_dict(self) -> dict[str, Any]:
        return {"anchor": self.anchor}  # checkpoints must keep theta0, which the model no longer holds

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.anchor = dict(state["anchor"])
