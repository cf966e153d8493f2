"""Plugins declare what they need and whom they follow; the strategy checks and orders them when it is built.

Every combination of two shipped plugins (``conf/plugin/*.yaml``), added to latent replay, either runs in
both orders with the same result, bit for bit, or is refused when the strategy is built, in one line.
"""

from __future__ import annotations

import itertools
from functools import partial

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from spikecl.cl import Plugin, Strategy
from spikecl.cl.plugins import LwF, SI, Consolidation, Replay, ShortTimeReplay
from spikecl.cli import config_dir
from spikecl.errors import ConfigError
from tests.factories import readout_plugin, replay_plugin
from tests.plugin_context import toy_context

SHIPPED = sorted(p.stem for p in (config_dir() / "plugin").glob("*.yaml") if p.stem != "none")


def shipped(name: str) -> Plugin:
    """The plugin of ``conf/plugin/<name>.yaml`` with its shipped settings."""
    node = OmegaConf.load(config_dir() / "plugin" / f"{name}.yaml")
    return instantiate(node)


def strategy(plugins: dict[str, Plugin], epochs: int = 1, optimizer=None) -> Strategy:
    return Strategy(name="t", latent_depth=1, epochs=epochs, lr=1e-2, batch_size=8, plugins=plugins,
                    optimizer=optimizer or partial(torch.optim.Adamax, lr=1e-2, betas=(0.9, 0.999)))


def base() -> dict[str, Plugin]:
    """Latent replay as the strategy configs make it (interleaved: short-time replay needs its own minibatches)."""
    return {"readout": readout_plugin(), "replay": replay_plugin("latent", 16, 0, "interleaved")}


def trained(names: tuple[str, str]) -> tuple[list[str], list[torch.Tensor]] | str:
    """The hook order and the weights after learning one task with both plugins in the listed order, or the
    ConfigError's message when the strategy refuses them."""
    try:
        s = strategy({**base(), **{name: shipped(name) for name in names}})
    except ConfigError as exc:
        return str(exc)
    ctx = toy_context()
    s.learn(ctx, 1)
    return list(s.plugins), [p.detach().clone() for p in ctx.model.parameters()]


def test_every_shipped_plugin_is_enumerated():
    assert {"ewc", "si", "lwf", "align", "balanced_loss", "consolidation", "short_replay", "der", "er_ace", "gdumb",
            "ncm", "bias"} <= set(SHIPPED)


@pytest.mark.parametrize("pair", list(itertools.combinations(SHIPPED, 2)), ids="+".join)
def test_two_plugins_do_the_same_in_either_order_or_are_refused(pair):
    first, second = trained(pair), trained(pair[::-1])
    if isinstance(first, str) or isinstance(second, str):
        assert first == second, "refused in one order only"
        assert "\n" not in first and "plugins" in first
        return
    assert first[0] == second[0]
    assert all(torch.equal(a, b) for a, b in zip(first[1], second[1]))


# --------------------------------------------------------------------------------------- declarations

class A(Plugin):
    pass


class B(Plugin):
    follows = (A,)


class C(Plugin):
    requires = (A,)


class D(Plugin):
    excludes = (A,)


class E(Plugin):
    follows = (B,)
    stage = 0


class F(Plugin):
    follows = (E,)


class G(Plugin):
    replaces_criterion = True


def test_follows_and_stage_decide_the_order_not_the_config():
    s = strategy({"b": B(), "e": E(), "a": A(), "readout": readout_plugin()})
    # readout has stage 0, E (stage 0) must wait for B, which waits for A
    assert list(s.plugins) == ["readout", "a", "b", "e"]


def test_impossible_combinations_are_refused_in_one_line():
    with pytest.raises(ConfigError, match=r"strategy.plugins.c \(C\) needs a A plugin"):
        strategy({"c": C()})
    with pytest.raises(ConfigError, match=r"strategy.plugins.d \(D\) cannot run with strategy.plugins.a \(A\)"):
        strategy({"a": A(), "d": D()})
    with pytest.raises(ConfigError, match="both replace the loss"):
        strategy({"g": G(), "h": G()})


def test_a_circle_of_follows_is_refused():
    class Left(Plugin):
        pass

    class Right(Plugin):
        follows = (Left,)

    Left.follows = (Right,)
    with pytest.raises(ConfigError, match="form a circle"):
        strategy({"left": Left(), "right": Right()})


def test_joint_training_belongs_to_the_pretraining_phase():
    from spikecl.cl.plugins import JointTraining

    with pytest.raises(ConfigError, match="use strategy=joint"):
        strategy({"joint": JointTraining()})


# ------------------------------------------------------------------- the bugs of 0.2 these rules fix

class Terms(Plugin):
    """Records another plugin's loss term on every minibatch, and whether it was a replayed one."""

    def __init__(self, kind: type[Plugin]):
        self.kind, self.terms, self.epochs_end = kind, [], 0

    def after_epoch(self, ctx, task, epoch):
        self.epochs_end = len(self.terms)  # what follows the last epoch is a phase's

    def loss(self, ctx, batch, scores):
        plugin = ctx.plugin(self.kind)
        term = plugin.loss(ctx, batch, scores)
        self.terms.append((bool(batch.replayed.any()), batch.z.shape[1], None if term is None else float(term.detach())))


def sleep() -> Consolidation:
    return shipped("consolidation")


@pytest.mark.parametrize("order", [("si", "sleep"), ("sleep", "si")])
def test_si_keeps_its_path_integral_through_consolidation(order):
    plugins = {"si": shipped("si"), "sleep": sleep()}
    s = strategy({**base(), **{k: plugins[k] for k in order}})
    ctx = toy_context()
    s.learn(ctx, 1)  # 0.2: KeyError 'w.1' (SI emptied its integral, then consolidation trained)
    si = s.plugin(SI)
    assert si.importance and all(bool(torch.isfinite(v).all()) for v in si.importance.values())


@pytest.mark.parametrize("order", [("lwf", "sleep"), ("sleep", "lwf")])
def test_lwf_distils_during_consolidation_in_either_order(order):
    plugins = {"lwf": shipped("lwf"), "sleep": sleep()}
    spy = Terms(LwF)
    s = strategy({**base(), **{k: plugins[k] for k in order}, "spy": spy}, epochs=1)
    ctx = toy_context()
    s.learn(ctx, 1)
    phase = spy.terms[spy.epochs_end:]
    assert phase and all(term is not None for _, _, term in phase)  # 0.2, lwf first: no teacher in the phase


def test_the_lwf_teacher_runs_under_the_short_time_dynamics_of_the_student():
    # the weights never change (lr 0): the teacher is the student, so distillation must be 0 on every
    # minibatch, the short-time replayed ones included (0.2: 0.1045 there, teacher at normal time constants)
    spy = Terms(LwF)
    s = strategy({**base(), "lwf": shipped("lwf"), "short": shipped("short_replay"), "spy": spy},
                 optimizer=partial(torch.optim.SGD, lr=0.0))
    ctx = toy_context()
    s.learn(ctx, 1)
    short = [term for replayed, steps, term in spy.terms if replayed]
    assert short and all(steps == ctx.data.spikes.nb_steps // 2 for replayed, steps, _ in spy.terms if replayed)
    assert max(abs(t) for _, _, t in spy.terms) < 1e-6
    assert isinstance(s.plugin(ShortTimeReplay), ShortTimeReplay) and isinstance(s.plugin(Replay), Replay)
