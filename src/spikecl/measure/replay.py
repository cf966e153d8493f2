"""What time compression does to replayed activity: rates before compression and after decompression.

For samples run from raw input, the activity at a latent depth is encoded and decoded with
:mod:`spikecl.cl.compression` exactly as the replay buffer does, and the layers above the depth are run from
both the original and the decompressed activity. One row per (ratio, codec) says how the stored layer's rate
changes (``or_impulse`` at 1:10 keeps one spike per window, the count codecs keep the rate) and how that
carries to the layers being trained (``rate_l{k}`` against ``rate_l{k}_replayed``).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from spikecl.cl.compression import check_codec, check_ratio, decode, encode
from spikecl.measure.activity import count_activity, firing_metrics
from spikecl.measure.synops import synops_metrics
from spikecl.models import RSNN


@torch.inference_mode()
def compare_replay(model: RSNN, x: Tensor, depth: int, ratios: Iterable[int], codecs: Iterable[str],
                   nb_steps: int | None = None) -> list[dict[str, float | str]]:
    """Rows of replayed-activity figures for every ratio and codec, at latent ``depth``.

    ``x`` is raw input (dense [B, T, U] or sparse CSR with ``nb_steps``). Keys: ``codec``, ``ratio``,
    ``depth``; ``rate_stored`` and ``rate_replayed``, the mean value per neuron and step of the activity at
    ``depth`` before compression and after decompression (spikes per step for d >= 1, the input current for
    d = 0) and ``rate_ratio`` (replayed / stored); ``rate_l{k}`` and ``rate_l{k}_replayed`` for every layer
    above the depth run from each; ``synops_train_depth`` and ``synops_train_depth_replayed``, the forward
    synaptic operations per sample of a training step on each (:mod:`spikecl.measure.synops`).
    """
    model.eval()
    z = model.latent(x, depth, nb_steps)
    kind = "current" if depth == 0 else "spikes"
    original = count_activity(model, z, depth=depth)
    before = firing_metrics(original)
    before_ops = synops_metrics(model, original)["synops_train_depth"]
    stored_mean = float(z.mean(dtype=torch.float64))
    layers = [f"rate_l{k}" for k in original.layers]
    rows: list[dict[str, float | str]] = []
    for ratio in ratios:
        check_ratio(ratio, z.shape[1])
        for codec in codecs:
            check_codec(codec, kind)
            replayed = decode(encode(z, ratio, codec), ratio, codec, z.dtype)
            counts = count_activity(model, replayed, depth=depth)
            after = firing_metrics(counts)
            replayed_mean = float(replayed.mean(dtype=torch.float64))
            row: dict[str, float | str] = {
                "codec": codec, "ratio": ratio, "depth": depth, "rate_stored": stored_mean,
                "rate_replayed": replayed_mean,
                "rate_ratio": replayed_mean / stored_mean if stored_mean else float("nan")}
            for key in layers:
                row[key] = before[key]
                row[f"{key}_replayed"] = after[key]
            row["synops_train_depth"] = before_ops
            row["synops_train_depth_replayed"] = synops_metrics(model, counts)["synops_train_depth"]
            rows.append(row)
    return rows
