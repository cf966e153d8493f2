"""The same seed gives the same numbers with any number of CPU threads (issue 10).

A few training steps of the paper's network, then inference, each in a fresh process with its own
``torch.set_num_threads``: losses, weights and outputs must agree bit for bit. MKL adds the sums of a dense
product in another order from 4 threads on (1 and 2 agree by chance of its partitioning), so 4 is included.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import spikecl

# Paper-sized (how MKL partitions a product depends on its shapes) and active enough that every layer spikes
# (7-9 % of its neurons per step) and both the dense and the event-driven products are used.
TRAIN = """
import sys
import torch
import torch.nn.functional as F
from spikecl.models import class_scores
from tests.model_config import make_model

torch.set_num_threads(int(sys.argv[1]))
torch.manual_seed(0)
model = make_model(nb_inputs=700, hidden=[200, 100, 50], nb_outputs=20, weight_scale=0.5)
optimizer = torch.optim.Adamax(model.parameters(), lr=2e-3)
g = torch.Generator().manual_seed(1)
losses = []
for _ in range(3):
    x = (torch.rand(64, 100, 700, generator=g) < 0.05).float() * torch.randint(1, 3, (64, 100, 700), generator=g)
    y = torch.randint(0, 20, (64,), generator=g)
    out = model(x.reshape(-1, 700).to_sparse_csr(), 100)
    loss = F.nll_loss(F.log_softmax(class_scores(out), dim=1), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    losses.append(loss.detach())
with torch.inference_mode():
    x = (torch.rand(256, 100, 700, generator=g) < 0.05).float()
    out = model(x.reshape(-1, 700).to_sparse_csr(), 100)
torch.save({"losses": torch.stack(losses), "out": out, **model.state_dict()}, sys.argv[2])
"""


def train_with_threads(threads: int, path: Path) -> dict[str, torch.Tensor]:
    # spinning OpenMP waiters would make more threads than cores crawl on a shared machine; the subprocess
    # imports the same spikecl as this one
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": os.pathsep.join(
        [str(Path(spikecl.__file__).parents[1]), str(Path(__file__).parents[1])])}
    subprocess.run([sys.executable, "-c", TRAIN, str(threads), str(path)], env=env, check=True, timeout=600)
    return torch.load(path, weights_only=True)


@pytest.mark.trained_figures
def test_training_gives_the_same_numbers_with_1_2_and_4_threads(tmp_path):
    results = {t: train_with_threads(t, tmp_path / f"threads{t}.pt") for t in (1, 2, 4)}
    one = results[1]
    assert one["out"].abs().sum() > 0 and len(set(one["losses"].tolist())) == 3, "the test needs a learning network"
    for threads in (2, 4):
        different = [name for name, value in one.items() if not torch.equal(value, results[threads][name])]
        assert not different, f"{threads} threads differ from 1 in {different}"
