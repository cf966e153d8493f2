"""What weight aligning does to spikecl's readout (docs/methods.md, "The default's fixes"): after every task,
just before aligning, the readout columns' norms and weight sums, the factor gamma, and on the validation
samples of the tasks so far the class scores and the accuracy before and after aligning. One JSON line per task.

    PYTHONPATH=src python docs/diagnostics/align_norms.py OUT_DIR experiment=digits_progressive \\
        dataset.root=../shared/data/fsdd-dev plugin=align seed=0
"""

from __future__ import annotations

import json
import sys

import numpy as np
import torch

import spikecl
from spikecl.cl.plugins.align import WeightAlign
from spikecl.cl.plugins.params import old_classes
from spikecl.models import class_scores


class LoggedAlign(WeightAlign):
    """Weight aligning that prints what it sees before it scales the new columns."""

    def after_task(self, ctx, task):
        old = old_classes(ctx, task)
        new = sorted(set(ctx.tasks[task].classes) - set(old))
        seen = sorted(set(old) | set(new))
        norms = ctx.model.class_column_norms()
        sums = ctx.model.w_out.detach().sum(dim=0)
        val = np.concatenate([t.val for t in ctx.tasks[:task + 1]])
        with torch.inference_mode():
            s = class_scores(ctx.model(ctx.data.spikes.csr(val, device=ctx.device), ctx.data.spikes.nb_steps))
        y = torch.as_tensor(ctx.data.labels[val])
        gamma = float(norms[old].mean() / norms[new].mean())
        aligned = s.clone()
        aligned[:, new] *= gamma
        target = torch.as_tensor([seen.index(int(c)) for c in y])
        on_old = ~torch.isin(y, torch.tensor(new))
        print(json.dumps({
            "task": task, "new_norm": float(norms[new].mean()), "old_mean_norm": float(norms[old].mean()),
            "gamma": gamma, "new_sum": float(sums[new].mean()), "old_mean_sum": float(sums[old].mean()),
            "new_score_on_old_samples": float(s[on_old][:, new].mean()),
            "own_score_on_old_samples": float(s[on_old].gather(1, y[on_old, None]).mean()),
            "val_before": float((s[:, seen].argmax(1) == target).float().mean()),
            "val_after": float((aligned[:, seen].argmax(1) == target).float().mean()),
            "predicted_new_after": float((aligned[:, seen].argmax(1) == seen.index(new[0])).float().mean())}),
            flush=True)
        super().after_task(ctx, task)


if __name__ == "__main__":
    cfg = spikecl.compose(sys.argv[2:])
    with spikecl.Experiment(cfg, sys.argv[1]) as exp:
        name = next(n for n, p in exp.strategy.plugins.items() if isinstance(p, WeightAlign))
        exp.strategy.plugins[name] = LoggedAlign()
        exp.pretrain()
        for t in range(1, len(exp.tasks)):
            exp.learn(t)
