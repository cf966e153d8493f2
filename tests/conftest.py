"""Shared fixtures: tiny SHD-format data sets on disk and composed configs pointing at them."""

from __future__ import annotations

import os

import pytest
import torch
from hydra import compose, initialize_config_dir

from spikecl.cli import config_dir
from spikecl.models.neurons import base
from spikecl.models.sparse import Events
from tests.factories import write_learnable_shd

# Small, fast settings for end-to-end runs on the tiny data set.
TINY = ["dataset=shd", "model.hidden=[32,24,16]", "model.weight_scale=2.0", "pretrain.epochs=2",
        "pretrain.lr=5e-3", "strategy.epochs=2", "strategy.lr=5e-3", "strategy.batch_size=16",
        "pretrain.batch_size=16", "progress=false", "plots=false"]
# The replay plugin's settings, for strategies that have one.
TINY_REPLAY = ["policy=growing", "strategy.plugins.replay.policy.capacity=16", "strategy.plugins.replay.policy.growth=4"]


def pytest_configure(config):
    # Under pytest-xdist (README: pytest -n auto) each worker is a process of its own: one torch thread per
    # worker keeps the workers from oversubscribing the cores. Tests that need threads set them themselves.
    if os.environ.get("PYTEST_XDIST_WORKER"):
        torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory):
    """A learnable 4-class, 4-speaker data set in the exact SHD schema (train and test files)."""
    root = tmp_path_factory.mktemp("tiny_shd")
    write_learnable_shd(root, classes=4, speakers=4, per_speaker_class=5)
    return root


@pytest.fixture
def compose_cfg(tiny_root, tmp_path):
    """compose_cfg(*overrides) -> a config for the tiny data set with its own cache folder."""

    def make(*overrides: str, cache=None):
        split = [] if any(o.startswith("split=") for o in overrides) else [
            "split=progressive", "split.old_classes=[0,1]", "split.new_classes=[2,3]"]
        replay = [] if "strategy=naive" in overrides else TINY_REPLAY
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            return compose("config", overrides=[*TINY, f"dataset.root={tiny_root}",
                                                f"cache_dir={cache or tmp_path / 'cache'}", *split, *replay,
                                                "hydra/sweeper=basic", *overrides])

    return make


@pytest.fixture(params=["events", "dense", "mixed"])
def products(request, monkeypatch):
    """Force the event-driven products and recurrence everywhere they apply, or never, or switch the
    recurrence between both from step to step."""
    if request.param == "dense":
        monkeypatch.setattr(Events, "MAX_DENSITY", -1.0)
        monkeypatch.setattr(base, "EVENT_MIN_WIDTH", 10**9)
        return request.param
    monkeypatch.setattr(Events, "pay_off", classmethod(lambda cls, density, width: True))
    monkeypatch.setattr(Events, "MAX_DENSITY", 1.0)
    monkeypatch.setattr(base, "EVENT_MIN_WIDTH", 0)
    monkeypatch.setattr(base, "EVENT_STEP_DENSITY", 1.0 if request.param == "events" else 0.1)
    return request.param
