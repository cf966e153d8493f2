"""The layers of presets do not contradict each other: experiment presets state only how they differ from
their scenario, and a split without a preset is uncompressed unless it is the progressive one."""

from __future__ import annotations

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from spikecl.cli import config_dir

PRESETS = sorted(p.stem for p in (config_dir() / "experiment").glob("*.yaml"))


def compose_with(*overrides: str):
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def leaves(node: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in node.items():
        out.update(leaves(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return out


@pytest.mark.parametrize("name", PRESETS)
def test_a_preset_sets_only_what_differs_from_its_scenario(name):
    preset = yaml.safe_load((config_dir() / "experiment" / f"{name}.yaml").read_text())
    groups = [f"{k[len('override /'):]}={v}" for d in preset.pop("defaults", []) if isinstance(d, dict)
              for k, v in d.items() if k.startswith("override /")]
    without = compose_with(*groups)
    same = [k for k, v in leaves(preset).items() if OmegaConf.select(without, k) == v]
    assert not same, f"experiment={name} repeats what its scenario already sets: {same}"


@pytest.mark.parametrize("split,ratio", [("progressive", 2), ("class_incremental", 1), ("sample_incremental", 1)])
def test_only_the_progressive_split_compresses_by_default(split, ratio):
    for strategy in ("rehearsal", "latent_replay"):
        assert compose_with(f"split={split}", f"strategy={strategy}").compression.ratio == ratio
    assert compose_with(f"split={split}", "compression=1to4").compression.ratio == 4  # the command line wins
