"""Every random stream of an experiment, in one place: a seed fixes all of them.

Each stream is a generator of its own, derived from the run's seed and what it is for (and the task, the
epoch), so that adding a draw to one never shifts the numbers of another: a new plugin that draws random
numbers takes a new stream here instead of reusing one. The NumPy streams are seeded with a list of
integers (NumPy's ``SeedSequence``); the ids below are those of spikecl 0.1, so its numbers are kept.

==================  ===========================  ==============================================================
stream              seed material                draws
==================  ===========================  ==============================================================
split_ranks         seed                         the permutation that cuts every pool into train/val/test
global generators   seed                         Python's, NumPy's and torch's own: the network's initial weights
minibatch_order     [seed, 0] / [seed, 2, task]  minibatch order of pretraining / of learned task ``task``
buffer_selection    [seed, 1] / [seed, 3, task]  which samples of the pretraining task / of a task join a buffer
eviction            [seed, 4, task]              which stored samples make room when task ``task``'s join
replay_noise        [seed, 5, task, epoch]       the noise of consolidation on replayed activity (torch)
consolidation_order [seed, 6, task, epoch]       the class-balanced plan of a consolidation epoch
reservoir           [seed, 7]                    the reservoir key of every data-set sample
readout_columns     seed * 1000 + task (torch)   the fresh readout columns of new classes (the paper's stream)
der_minibatch       [seed, 8, task]              DER++'s second buffer minibatch of every step of task ``task``
gdumb_order         [seed, 9, task, epoch]       the minibatch order of an epoch of GDumb's training on the buffer
bias_holdout        [seed, 10, task]             which samples bias correction holds out of task ``task``'s training
==================  ===========================  ==============================================================
"""

from __future__ import annotations

import random

import numpy as np
import torch


def split_ranks(seed: int | None) -> np.random.Generator:
    """The stream of the permutation of all samples that cuts pools into train, validation and test."""
    return np.random.default_rng(seed)


def global_generators(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators; the network draws its initial weights from
    torch's, right after (spikecl itself draws from the streams here, never from a global generator)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def minibatch_order(seed: int, task: int) -> np.random.Generator:
    """Minibatch order (and replay draws) of the phase that trains ``task`` (0: pretraining)."""
    return np.random.default_rng([seed, 0] if task == 0 else [seed, 2, task])


def buffer_selection(seed: int, task: int) -> np.random.Generator:
    """Which train samples of ``task`` a replay buffer stores."""
    return np.random.default_rng([seed, 1] if task == 0 else [seed, 3, task])


def eviction(seed: int, task: int) -> np.random.Generator:
    """Which stored samples leave a fixed-capacity buffer when ``task``'s samples join."""
    return np.random.default_rng([seed, 4, task])


def replay_noise(seed: int, task: int, epoch: int, device: torch.device | str) -> torch.Generator:
    """A torch generator on ``device`` for the noise on replayed activity in an epoch of consolidation."""
    state = np.random.SeedSequence([seed, 5, task, epoch]).generate_state(1, np.uint64)[0]
    return torch.Generator(device=device).manual_seed(int(state >> np.uint64(1)))


def consolidation_order(seed: int, task: int, epoch: int) -> np.random.Generator:
    """The class-balanced minibatch plan of an epoch of consolidation after ``task``."""
    return np.random.default_rng([seed, 6, task, epoch])


def reservoir(seed: int) -> np.random.Generator:
    """The keys of reservoir sampling: one uniform draw per data-set sample, in data-set order."""
    return np.random.default_rng([seed, 7])


def readout_columns(seed: int, task: int) -> torch.Generator:
    """A CPU torch generator for the readout columns of the classes ``task`` brings (the paper's stream)."""
    return torch.Generator().manual_seed(seed * 1000 + task)


def der_minibatch(seed: int, task: int) -> np.random.Generator:
    """The buffer samples of DER++'s cross-entropy term, one draw per minibatch of ``task``."""
    return np.random.default_rng([seed, 8, task])


def gdumb_order(seed: int, task: int, epoch: int) -> np.random.Generator:
    """The minibatch order of epoch ``epoch`` of GDumb's training on the buffer after ``task``."""
    return np.random.default_rng([seed, 9, task, epoch])


def bias_holdout(seed: int, task: int) -> np.random.Generator:
    """Which buffer and new samples bias correction keeps out of ``task``'s training to fit its correction on."""
    return np.random.default_rng([seed, 10, task])
