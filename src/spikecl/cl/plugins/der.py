"""DER++, Dark Experience Replay (Buzzega et al. 2020, "Dark experience for general continual learning").

Every sample of the :class:`~spikecl.cl.plugins.replay.Replay` plugin's buffer also keeps the class scores
the network gave it when it was stored, ``s*`` [C] (float16, every class). A minibatch of B rows, of which
the rows R come from the buffer and the rows N are new, then has the loss

    L = mean_{i in N} CE(s_i, y_i)                                      (the new samples, as plain training)
      + alpha * 1 / (|R| C) * sum_{i in R} sum_c (s_ic - s*_ic)^2      (the stored scores: "dark knowledge")
      + beta * mean_{j in R'} CE(s_j, y_j)                              (labels of another buffer minibatch)

with s the class scores (the maximum over time of the readout record) and R' as many buffer samples as R,
drawn at random from the whole buffer (stream ``der_minibatch``) and run through the trainable layers in a
second forward pass. The first buffer minibatch is the replayed rows that ``Replay`` put into the
minibatch (``mix`` and ``replay_ratio`` say how many: with ``mixed`` and ``replay_ratio`` r every
minibatch holds B / (1 + r) new and r B / (1 + r) replayed rows); so the new samples' cross-entropy is
over the new rows only, and a minibatch without new rows (``sequential`` replay's) has only the two
buffer terms. MSE and CE are means, as in the paper, so alpha and beta weigh them against the new rows'
mean cross-entropy.

**When the scores are stored.** Replay stores a task's train samples when the next task starts (or when
another plugin asks it to store them earlier, at the end of their task: GDumb, NCM). At that moment the
network is the one that finished learning the sample's task; its scores are taken on the sample's raw
input through the whole network (the sample as it really was, not the compressed activity the buffer
keeps), for every class, the columns the readout plugin drew for the next task's classes included:
classes the network has not learned yet score low on old samples, and the MSE keeps it that way (the
paper distils every logit too). The scores count towards the buffer's memory: ``buffer_bytes`` (and
``bytes_per_sample``) in ``summary.json`` are the stored activity's plus 2 C bytes per sample
(``der_score_bytes``); the activity's own storage and compression are unchanged.

Short-time replay (:class:`~spikecl.cl.plugins.short_replay.ShortTimeReplay`) is refused: its replayed rows
run under other dynamics than those the scores were stored with.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from spikecl.cl.context import Context
from spikecl.cl.minibatch import Batch, minibatches
from spikecl.cl.plugin import Plugin
from spikecl.cl.plugins.replay import Replay
from spikecl.cl.plugins.short_replay import ShortTimeReplay
from spikecl.models import class_scores
from spikecl.utils import checks, streams


def stored_score_term(scores: Tensor, stored: Tensor) -> Tensor:
    """The mean squared difference of class scores [R, C] and the stored ones [R, C] (float32)."""
    return F.mse_loss(scores, stored.to(scores.dtype))


class DER(Plugin):
    """DER++ on the replay buffer (see the module docstring).

    Args:
        alpha: weight of the stored scores' mean squared error (alpha of the paper).
        beta: weight of the cross-entropy on a second buffer minibatch (beta; 0: DER without ++).
    """

    requires = (Replay,)
    excludes = (ShortTimeReplay,)
    follows = (Replay,)  # scores are stored for what Replay has just stored
    replaces_criterion = True

    def __init__(self, *, alpha: float, beta: float) -> None:
        self.alpha = checks.number("alpha", alpha, positive=False)
        self.beta = checks.number("beta", beta, positive=False)
        self.ids = np.zeros(0, dtype=np.int64)     # data-set ids of the samples with stored scores, sorted
        self.scores: Tensor | None = None           # float16 [len(ids), C], row k for ids[k]
        self.rng: np.random.Generator | None = None

    # ------------------------------------------------------------------------------------------ scores

    def before_task(self, ctx: Context, task: int) -> None:
        self.rng = streams.der_minibatch(ctx.seed, task)
        if self.scores is not None:  # restored from a checkpoint on the CPU
            self.scores = self.scores.to(ctx.device)
        self.sync(ctx)

    def sync(self, ctx: Context) -> None:
        """Store the scores of the buffer's samples that have none yet, and forget those of evicted samples."""
        buffer = ctx.plugin(Replay).buffer
        held = np.sort(buffer.sample_ids)
        keep = np.isin(self.ids, held)
        fresh = held[~np.isin(held, self.ids)]
        scores = self.scores[torch.as_tensor(np.flatnonzero(keep))] if self.scores is not None else None
        ids = self.ids[keep]
        if len(fresh):
            new = self._scores_of(ctx, fresh)
            scores = new if scores is None else torch.cat([scores, new])
            ids = np.concatenate([ids, fresh])
        order = np.argsort(ids, kind="stable")
        self.ids = ids[order]
        self.scores = None if scores is None else scores[torch.as_tensor(order, device=scores.device)]

    @torch.inference_mode()
    def _scores_of(self, ctx: Context, ids: np.ndarray) -> Tensor:
        """float16 class scores [n, C] of data-set samples ``ids`` from their raw input, whole network."""
        spikes = ctx.data.spikes
        return torch.cat([class_scores(ctx.model(spikes.csr(b, device=ctx.device), spikes.nb_steps)).to(torch.float16)
                          for b in minibatches(ids, 256)])

    def stored(self, sample_ids: np.ndarray) -> Tensor:
        """The stored scores [n, C] (float16) of data-set samples ``sample_ids``."""
        pos = np.searchsorted(self.ids, sample_ids)
        if np.any(pos >= len(self.ids)) or np.any(self.ids[np.minimum(pos, len(self.ids) - 1)] != sample_ids):
            raise RuntimeError("DER: a replayed sample has no stored scores (the buffer changed since before_task)")
        return self.scores[torch.as_tensor(pos, device=self.scores.device)]

    # ------------------------------------------------------------------------------------------- loss

    def criterion(self, ctx: Context, batch: Batch, scores: Tensor) -> Tensor | None:
        new = ~batch.replayed
        if not bool(new.any()):
            return scores.sum() * 0.0  # only the buffer terms (a replay-only minibatch)
        return F.cross_entropy(scores[new], batch.labels[new])

    def loss(self, ctx: Context, batch: Batch, scores: Tensor) -> Tensor | None:
        replay = ctx.plugin(Replay)
        rows = batch.replayed
        n = int(rows.sum())
        if n == 0 or self.scores is None:
            return None
        # The replayed rows' buffer positions, in row order (every replayed source indexes Replay's buffer).
        positions = np.concatenate([p.idx for p in batch.pieces if p.replayed])
        term = self.alpha * stored_score_term(scores[rows], self.stored(replay.buffer.sample_ids[positions]))
        if self.beta > 0:
            other = self.rng.choice(len(replay.source), size=min(n, len(replay.source)), replace=False)
            z = replay.source.entry(other)
            out = ctx.model.from_latent(z, ctx.entry_depth)
            term = term + self.beta * F.cross_entropy(class_scores(out), replay.source.labels[other])
        return term

    # ---------------------------------------------------------------------------------------- reports

    def figures(self, ctx: Context) -> dict[str, Any]:
        """The stored scores' bytes, added to the buffer's size figures (this plugin's figures follow Replay's)."""
        replay = ctx.plugin(Replay)
        if replay is None or replay.buffer is None:
            return {}
        score_bytes = 0 if self.scores is None else self.scores.numel() * self.scores.element_size()
        buf = replay.buffer
        total = buf.nbytes + score_bytes
        return {"der_score_bytes": score_bytes, "buffer_bytes": total,
                "bytes_per_sample": total / len(buf) if len(buf) else 0.0}

    def state_dict(self) -> dict[str, Any]:
        return {"ids": torch.from_numpy(self.ids.copy()),
                "scores": None if self.scores is None else self.scores.cpu()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ids = state["ids"].numpy().astype(np.int64)
        self.scores = state["scores"]

