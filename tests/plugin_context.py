"""Hand-made contexts for the plugins' unit tests: a tiny RSNN, tasks and sources without the loop."""

from __future__ import annotations

import numpy as np
import torch

from spikecl.cl.context import Context
from spikecl.data import Task
from spikecl.models import RSNN
from tests.model_config import make_model


class TensorSource:
    """A training source holding its entry activity: ``entry(idx)`` is ``z[idx]``."""

    def __init__(self, z: torch.Tensor, labels) -> None:
        self.z, self.labels = z, torch.as_tensor(labels, dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def entry(self, idx: np.ndarray) -> torch.Tensor:
        return self.z[torch.as_tensor(idx)]


def task(name: str, classes: list[int], train=()) -> Task:
    return Task(name, classes, np.asarray(train, dtype=np.int64), np.zeros(0, dtype=np.int64))


def make_ctx(model: RSNN, depth: int, tasks: list[Task], new=None, data=None, task_index: int = 1) -> Context:
    """A context as the loop sets it while task ``task_index`` trains at ``depth``."""
    ctx = Context(model=model, data=data, tasks=tasks, device=torch.device("cpu"), seed=0, latent_depth=depth)
    ctx.task, ctx.new = task_index, new
    ctx.trainable = model.layer_parameters(depth)
    return ctx


def set_(param: torch.nn.Parameter, value) -> None:
    """Overwrite a parameter in place (as an optimiser step does)."""
    with torch.no_grad():
        param.copy_(torch.as_tensor(value, dtype=param.dtype))


def toy_context(ratio: int = 2) -> Context:
    """A class-incremental Context on the toy clustered data set (class 3 learned last), a 3-layer model."""
    from spikecl.cl.compression import Compression
    from spikecl.data import ClassIncremental, Partition
    from tests.factories import clustered_dataset

    data = clustered_dataset()
    tasks = ClassIncremental(new_class=3).tasks(data, Partition("merged", 0.25), 0)
    torch.manual_seed(0)
    model = make_model(nb_inputs=24, hidden=[16, 12, 8], nb_outputs=4, weight_scale=5.0)
    return Context(model=model, data=data, tasks=tasks, device=torch.device("cpu"), seed=0,
                   compression=Compression(ratio=ratio, codec="or_impulse", input_codec="sum_impulse",
                                               current_dtype="float32"))
