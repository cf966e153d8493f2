"""strategy=der, er_ace and gdumb compose with every split and build into the plugins they name."""

from __future__ import annotations

import pytest

import spikecl
from spikecl.build import build_setup
from spikecl.cl.plugins import DER, ERACE, GDumb, NearestClassMean, Replay
from spikecl.cl.policies import ClassBalanced


@pytest.mark.parametrize("split", ["progressive", "class_incremental", "sample_incremental"])
@pytest.mark.parametrize("strategy,kind", [("der", DER), ("er_ace", ERACE), ("gdumb", GDumb)])
def test_replay_strategies_build(split, strategy, kind):
    setup = build_setup(spikecl.compose([f"split={split}", f"strategy={strategy}"]))
    s = setup.strategy
    assert s.name == strategy and isinstance(s.plugin(kind), kind) and isinstance(s.plugin(Replay), Replay)
    latent = build_setup(spikecl.compose([f"split={split}"])).strategy
    assert (s.latent_depth, s.lr) == (latent.latent_depth, latent.lr)  # the split's latent replay budget
    if strategy == "gdumb":
        assert isinstance(s.plugin(Replay).policy, ClassBalanced)
        assert s.plugin(GDumb).epochs == s.epochs  # GDumb's budget per task is the strategy's
        assert not setup.eval.every_epoch


def test_a_preset_budget_is_gdumbs_and_ncm_adds_to_any_replay():
    setup = build_setup(spikecl.compose(["experiment=digits_progressive", "strategy=gdumb", "plugin=ncm"]))
    assert setup.strategy.plugin(GDumb).epochs == 40
    assert isinstance(setup.strategy.plugin(NearestClassMean), NearestClassMean)
