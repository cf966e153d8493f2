"""An experiment, from Python or from the command line: build, pretrain, learn each task, write outputs.

``Experiment(cfg, output_dir)`` turns the composed config into objects once (every group with a
``_target_``; see :mod:`spikecl.build`), loads the data and cuts it into tasks, and builds the model. Then
:meth:`Experiment.pretrain`, :meth:`Experiment.learn` for each task and :meth:`Experiment.write_outputs`,
or :meth:`Experiment.run` for all of it (what ``python -m spikecl`` does). Nothing below this module sees
the config: only the objects travel down.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from spikecl.build import build, build_strategy
from spikecl.cl import Context, Strategy
from spikecl.cl.buffer import FIGURES
from spikecl.cl.compression import Compression
from spikecl.cl.metrics import Recorder, matrix_metrics, per_group_accuracy, task_accuracies
from spikecl.cl.plugins import JointTraining, Replay
from spikecl.config import check_across
from spikecl.data import SpikeFiles, Split
from spikecl.engine import EvalSettings, Evaluation, SpikeRegulariser, Timer, evaluate, show_progress
from spikecl.errors import ConfigError
from spikecl.loggers import MultiLogger
from spikecl.measure import compare_replay, measure
from spikecl.report.joint import joint_figures, sibling_runs
from spikecl.plot import plot_run
from spikecl.pretrain import cache_key, data_fingerprint, index_hash, pretrained
from spikecl.utils import checks
from spikecl.utils.atomic import write_json, write_text, write_with
from spikecl.utils.cache_dir import open_cache_dir
from spikecl.utils.device import Device
from spikecl.utils.provenance import code_fingerprint, git_sha, versions

log = logging.getLogger("spikecl")


CHECKPOINTS = "checkpoints"
CHECKPOINT_POLICIES = ("last", "all", "none")
NO_BUFFER = dict.fromkeys(FIGURES, 0)


def seed_everything(seed: int) -> None:
    """Fix Python's, NumPy's and torch's global generators (spikecl itself uses explicit generators)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class Parts:
    """The config turned into checked objects, before any data is read (what an Experiment is made of)."""

    seed: int
    progress: bool
    checkpoints: str
    cache_dir: Path
    plots: bool
    files: SpikeFiles
    split: Split
    compression: Compression
    eval: EvalSettings
    reg: SpikeRegulariser
    pretraining: Strategy
    strategy: Strategy
    device: Device


def build_parts(cfg: DictConfig) -> Parts:
    """Every config group built into its object, the checks across groups done, the cache folder opened:
    a bad value stops here with one line, before any long work."""
    parts = Parts(
        seed=checks.integer("seed", cfg.seed, 0), progress=show_progress(cfg.progress),
        checkpoints=checks.one_of("checkpoints", cfg.checkpoints, CHECKPOINT_POLICIES),
        cache_dir=open_cache_dir(cfg.cache_dir), plots=checks.boolean("plots", cfg.plots),
        files=build(cfg.dataset, "dataset"), split=build(cfg.split, "split"),
        compression=build(cfg.compression, "compression"), eval=build(cfg.eval, "eval"), reg=build(cfg.loss, "loss"),
        pretraining=build_strategy(cfg.pretrain, "pretrain"), strategy=build_strategy(cfg.strategy, "strategy"),
        device=build(cfg.device, "device"))
    if parts.pretraining.plugin(JointTraining) is not None and parts.strategy.epochs:
        # Joint training has seen every task's train data: nothing is left for the continual phase, whatever
        # epochs a preset gives it (experiment=digits_progressive sets strategy.epochs for every method).
        log.info("joint training: the continual phase trains nothing (strategy.epochs=%d not used)",
                 parts.strategy.epochs)
        parts.strategy.epochs = 0
    with torch.device("meta"):  # checks the model's arguments now, without memory or random numbers
        shape = build(cfg.model, "model", nb_outputs=cfg.model.nb_outputs or 1)
    check_across(nb_steps=parts.files.nb_steps, ratio=parts.compression.ratio, model=shape,
                 strategies={"pretrain": parts.pretraining, "strategy": parts.strategy})
    return parts


class Experiment:
    """One continual-learning experiment and its run folder.

    Attributes: ``model``, ``data``, ``tasks``, ``strategy`` (with its ``plugins``, e.g. the replay
    buffer: ``strategy.plugins["replay"].buffer``), ``pretraining`` (the strategy of task 0), ``recorder``
    (the rows of ``metrics.csv`` so far), ``matrix`` (row i: test accuracy on every task after task i) and
    ``learned`` (how many tasks after pretraining are done).
    """

    def __init__(self, cfg: DictConfig, output_dir: str | Path, fingerprint: str | None = None,
                 parts: Parts | None = None) -> None:
        self.cfg = cfg
        self.folder = Path(output_dir)
        self.fingerprint = fingerprint
        self.parts = parts = parts or build_parts(cfg)
        self.seed, self.checkpoints, self.cache_dir = parts.seed, parts.checkpoints, parts.cache_dir
        self.files, self.split, self.compression = parts.files, parts.split, parts.compression
        self.eval, self.reg = parts.eval, parts.reg
        self.pretraining, self.strategy = parts.pretraining, parts.strategy
        progress = parts.progress
        self.device = parts.device.activate()
        self.folder.mkdir(parents=True, exist_ok=True)

        seed_everything(self.seed)
        self.data = self.files.load(self.cache_dir)
        self.tasks = self.split.tasks(self.data, self.files.partition, self.seed)
        log.info("data set %r (%s): %d samples; split %s: %s", self.data.name, ", ".join(self.data.files),
                 len(self.data), self.split.name,
                 "; ".join(f"{t.name}: {len(t.train)} train / {len(t.test)} test" for t in self.tasks))
        nb_outputs = cfg.model.nb_outputs or self.data.num_classes
        if nb_outputs < self.data.num_classes:
            raise ConfigError(f"model.nb_outputs={nb_outputs} is not valid: the data set has "
                              f"{self.data.num_classes} classes (its labels and class names); set "
                              f"model.nb_outputs=null (one output per class) or >= {self.data.num_classes}")
        torch.manual_seed(self.seed)
        self.model = build(cfg.model, "model", nb_outputs=nb_outputs).to(self.device)

        self.logger = MultiLogger([build(node, f"logger.{name}", run_dir=self.folder)
                                   for name, node in (cfg.get("logger") or {}).items()])
        self.recorder = Recorder(self.folder / "metrics.csv", self.tasks, self.logger)
        self.activity: list[dict[str, float]] = []  # firing and synaptic-operation figures after each task
        self.activity_seconds = 0.0                  # what measuring them cost
        self.ctx = Context(model=self.model, data=self.data, tasks=self.tasks, device=self.device, seed=self.seed,
                           compression=self.compression, reg=self.reg, progress=progress,
                           timer=Timer(), on_epoch=self._on_epoch)
        self.matrix: list[list[float]] = []       # test accuracy per task after each task
        self.val_matrix: list[list[float]] = []   # the same on the validation parts (for tuning)
        self.learned = 0
        self.pretrain_info: dict[str, Any] | None = None
        self.pretrain_cached = False
        self.before: Evaluation | None = None
        self.after: Evaluation | None = None
        self._last: dict[tuple, tuple] = {}  # (task, data) -> last epoch's evaluation and the weights it saw

    @property
    def progressive(self) -> bool:
        """Whether metrics report every task (progressive split) or only old / new / all."""
        return self.split.name == "progressive"

    # ------------------------------------------------------------------------------------- evaluation

    def evaluate(self, data: str = "test") -> Evaluation:
        """The whole network on every task's ``data`` part (test or val), from raw input, without autograd."""
        indices = np.concatenate([getattr(t, data) for t in self.tasks])
        return evaluate(self.model, self.data.spikes, self.data.labels, indices, self.eval.batch_size, self.device)

    @property
    def has_val(self) -> bool:
        """Whether the tasks have validation parts (``dataset.val_fraction`` > 0 or a validation file)."""
        return any(len(t.val) for t in self.tasks)

    def _on_epoch(self, task: int, epoch: int, loss: float) -> None:
        """After every epoch: validation accuracy (and test accuracy with ``eval.test_every_epoch``)."""
        strategy = self.pretraining if task == 0 else self.strategy
        last = epoch == strategy.epochs
        phase = "pretrain" if task == 0 else "cl"
        if not (self.eval.every_epoch or last):
            return
        parts = (["val"] if self.has_val else []) + (["test"] if self.eval.test_every_epoch else [])
        shown = [f"loss {loss:.4f}"]
        for data in parts:
            ev = self.evaluate(data)
            if last:  # kept with the weights it saw: an after_task hook may still change them
                self._last[(task, data)] = (ev, [p.detach().clone() for p in self.model.parameters()])
            accs = self.recorder.record(phase, task, epoch, ev, self.progressive, loss, data)
            keys = ["old"] if task == 0 else ["old", "new", "all"]
            shown.append(f"{data} " + ", ".join(f"{k} {accs[k]:.4f}" for k in keys))
        where = "pretrain" if task == 0 else f"task {task} ({self.tasks[task].name})"
        log.info("%s epoch %d/%d: %s", where, epoch, strategy.epochs, "; ".join(shown))

    def _after_task(self, task: int, data: str) -> Evaluation:
        """The evaluation on ``data`` after ``task``: the last epoch's if the weights are still those it saw
        (no epoch ran when epochs=0; weight aligning changes the readout after the last epoch), else a new
        one, whose test rows then join metrics.csv."""
        ev, weights = self._last.pop((task, data), (None, None))
        if ev is None or not all(torch.equal(a, b) for a, b in zip(weights, self.model.parameters())):
            ev = self.evaluate(data)
            if data == "test":
                strategy = self.pretraining if task == 0 else self.strategy
                self.recorder.record("cl", task, strategy.epochs if task else 0, ev, self.progressive, data=data)
        if data == "test":
            self.activity.append(self.measure_activity())
            self.recorder.annotate(self.activity[-1])
        return ev

    def measure_activity(self) -> dict[str, float]:
        """Firing rates, silent neurons, sparsity per hidden layer and synaptic operations per sample (for
        inference, and for a training step at the latent depth) on every task's test samples."""
        started = time.perf_counter()
        indices = np.concatenate([t.test for t in self.tasks])
        figures = measure(self.model, self.data.spikes, indices, self.eval.batch_size, self.device,
                          step_seconds=self.files.max_time / self.files.nb_steps, train_depth=self.strategy.latent_depth)
        self.activity_seconds += time.perf_counter() - started
        return figures

    def replay_activity(self) -> list[dict[str, float | str]]:
        """What the buffer's time compression does to the replayed activity (rates before compression and
        after decompression, and in the layers above), on up to 256 pretraining train samples; empty
        without a latent replay buffer."""
        replay = self.strategy.plugin(Replay)
        if replay is None or replay.stores != "latent" or replay.buffer is None:
            return []
        idx = self.tasks[0].train[:256]
        x = self.data.spikes.csr(idx, device=self.device)
        return compare_replay(self.model, x, self.strategy.depth, [replay.buffer.ratio], [replay.buffer.codec],
                              self.data.spikes.nb_steps)

    # ---------------------------------------------------------------------------------------- phases

    def pretrain(self) -> Evaluation:
        """Train task 0 (or load it from the pretraining cache) and evaluate the pretrained model."""
        def train() -> dict[str, Any]:
            timer = Timer()
            self.pretraining.learn(dataclasses.replace(self.ctx, timer=timer), 0)
            self._last.clear()
            return {"seconds": timer.seconds, "samples_per_second": timer.rate,
                    "rows": [r for r in self.recorder.rows if r["phase"] == "pretrain"]}

        self.pretrain_info, self.pretrain_cached = pretrained(self.model, self._pretrain_key(), self.cache_dir,
                                                              self.device, train)
        if self.pretrain_cached:  # the run folder still gets the pretraining curve
            self.recorder.rows[:0] = self.pretrain_info["rows"]
        self.before = self.after = self._after_task(0, "test")
        self.matrix = [task_accuracies(self.before, self.tasks)]
        if self.has_val:
            self.val_matrix = [task_accuracies(self._after_task(0, "val"), self.tasks, "val")]
        log.info("pretrained model: test accuracy on the pretraining task %.4f, on all %.4f", self.matrix[0][0],
                 self.before.accuracy())
        return self.before

    def learn(self, task: int) -> Evaluation:
        """Learn task ``task`` (1 .. len(tasks)-1, in order) with the strategy; returns the test evaluation
        after it."""
        if not self.matrix:
            raise RuntimeError("call pretrain() before learn()")
        if task != self.learned + 1 or task >= len(self.tasks):
            raise ValueError(f"the next task to learn is {self.learned + 1} of 1..{len(self.tasks) - 1}, not {task}")
        self.strategy.learn(self.ctx, task)
        self.after = self._after_task(task, "test")
        self.matrix.append(task_accuracies(self.after, self.tasks))
        if self.has_val:
            self.val_matrix.append(task_accuracies(self._after_task(task, "val"), self.tasks, "val"))
        self.learned = task
        log.info("after task %d (%s): test accuracy per task %s", task, self.tasks[task].name,
                 " ".join(f"{a:.3f}" for a in self.matrix[-1]))
        return self.after

    def run(self) -> dict[str, Any]:
        """Pretrain, learn every task (from where a resumed checkpoint left off), write the run folder;
        returns the summary. A checkpoint follows pretraining and every task (``checkpoints``)."""
        write_text(self.folder / "config.yaml", OmegaConf.to_yaml(self.cfg, resolve=True))
        if not self.matrix:
            self.pretrain()
            self.checkpoint()
        for task in range(self.learned + 1, len(self.tasks)):
            self.learn(task)
            self.checkpoint()
        return self.write_outputs()

    # ----------------------------------------------------------------------------------- checkpoints

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to go on after the last finished task: the model, every plugin's state (the
        replay buffer, importances, ...), the metrics so far, the timers and torch's random state. No
        optimiser state: every task starts a fresh optimiser, as the paper."""
        return {
            "fingerprint": self.fingerprint, "learned": self.learned,
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "plugins": {name: plugin.state_dict() for name, plugin in self.strategy.plugins.items()},
            "matrix": self.matrix, "val_matrix": self.val_matrix, "rows": self.recorder.rows,
            "activity": self.activity, "activity_seconds": self.activity_seconds,
            "timer": (self.ctx.timer.seconds, self.ctx.timer.samples),
            "pretrain_info": self.pretrain_info, "pretrain_cached": self.pretrain_cached,
            "before": dataclasses.asdict(self.before), "after": dataclasses.asdict(self.after),
            "torch_rng": torch.get_rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Go on from a :meth:`state_dict` of the same experiment."""
        self.learned = int(state["learned"])
        self.model.load_state_dict(state["model"])
        for name, plugin_state in state["plugins"].items():
            self.strategy.plugins[name].load_state_dict(plugin_state)
        self.matrix, self.val_matrix, self.activity = state["matrix"], state["val_matrix"], state["activity"]
        self.activity_seconds = state["activity_seconds"]
        self.recorder.rows[:] = state["rows"]
        self.ctx.timer.seconds, self.ctx.timer.samples = state["timer"]
        self.pretrain_info, self.pretrain_cached = state["pretrain_info"], state["pretrain_cached"]
        self.before, self.after = Evaluation(**state["before"]), Evaluation(**state["after"])
        torch.set_rng_state(state["torch_rng"])

    def checkpoint(self) -> Path | None:
        """Write ``checkpoints/task<learned>.pt`` atomically (``checkpoints=none``: nothing; ``last``: only
        the newest is kept)."""
        if self.checkpoints == "none":
            return None
        folder = self.folder / CHECKPOINTS
        path = folder / f"task{self.learned}.pt"
        state = self.state_dict()
        write_with(path, lambda tmp: torch.save(state, tmp))
        if self.checkpoints == "last":
            for old in folder.glob("task*.pt"):
                if old != path:
                    old.unlink(missing_ok=True)
        return path

    def resume(self) -> bool:
        """Load the newest checkpoint of this run folder if it is of this experiment (same fingerprint);
        returns whether one was loaded."""
        found = sorted(((int(p.stem[4:]), p) for p in (self.folder / CHECKPOINTS).glob("task*.pt")
                        if p.stem[4:].isdigit()), reverse=True)
        for learned, path in found:
            try:
                # Written by this run into its own folder: a full unpickle (plugins may keep any state).
                state = torch.load(path, map_location="cpu", weights_only=False)
            except Exception as exc:  # an unreadable checkpoint is never trusted; an older one may be
                log.warning("checkpoint %s is unreadable (%s); trying an older one", path, exc)
                continue
            if state.get("fingerprint") != self.fingerprint:
                log.info("checkpoint %s is of another experiment (fingerprint differs); starting over", path)
                return False
            self.load_state_dict(state)
            log.info("resuming from %s: pretraining and %d learned tasks are done", path, learned)
            return True
        return False

    # --------------------------------------------------------------------------------------- outputs

    def write_outputs(self) -> dict[str, Any]:
        """``model.pt``, ``per_group_accuracy.csv`` and, last, ``summary.json``; returns the summary. The
        loggers get the accuracy matrix and the hyper-parameters with the final figures."""
        write_with(self.folder / "model.pt",
                   lambda p: torch.save({k: v.cpu() for k, v in self.model.state_dict().items()}, p))
        write_text(self.folder / "per_group_accuracy.csv", per_group_accuracy(self.before, self.after, self.data))
        summary = self.summary()
        # How far from joint training (the upper bound), when a finished joint run of the same setting is
        # next to this one (a sweep's other jobs); the report looks further.
        summary.update(joint_figures(summary, sibling_runs(self.folder), exclude=self.folder,
                                     config=OmegaConf.to_container(self.cfg, resolve=True)))
        self.logger.log_matrix("accuracy_matrix", np.array(self.matrix))
        final = {k: v for k, v in summary.items() if k.startswith(("acc_", "val_acc_", "bwt", "forgetting"))
                 and isinstance(v, (int, float))}
        self.logger.log_hparams(OmegaConf.to_container(self.cfg, resolve=True), final)
        if self.parts.plots:  # one test sample of the last task, drawn by the final model
            plot_run(self.model, self.data, self.parts, int(self.tasks[-1].test[0]), self.folder / "plots")
        write_json(self.folder / "summary.json", summary)
        for line in human_summary(summary):
            log.info(line)
        return summary

    def close(self) -> None:
        """Close the loggers (their files are complete after this)."""
        self.logger.close()

    def __enter__(self) -> Experiment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def summary(self) -> dict[str, Any]:
        """Every figure of the run so far (what ``summary.json`` holds)."""
        matrix = np.array(self.matrix)
        new_test = np.concatenate([t.test for t in self.tasks[1:]])
        replay = self.strategy.plugin(Replay)
        buf = replay.buffer if replay is not None else None
        before, after = self.before, self.after
        acc_old_before, acc_old = matrix[0, 0], matrix[-1, 0]
        summary: dict[str, Any] = {
            "status": "completed",
            "dataset": self.data.name,
            "protocol": self.files.partition.protocol,
            "split": self.split.name,
            "speaker": getattr(self.split, "speaker", None),
            "new_class": getattr(self.split, "new_class", None),
            "strategy": self.strategy.name,
            "plugins": list(self.strategy.plugins),
            "latent_depth": self.strategy.latent_depth,
            "compression_ratio": buf.ratio if buf is not None else None,
            "codec": buf.codec if buf is not None else None,
            "buffer_size": replay.buffer_size if replay is not None else 0,
            "epochs": self.strategy.epochs,
            "lr": self.strategy.lr,
            "seed": self.seed,
            "device": str(self.device),
            "acc_old_before": acc_old_before,
            "acc_new_before": before.accuracy(before.subset(new_test)),
            "acc_old": acc_old,
            "acc_new": after.accuracy(after.subset(new_test)),
            "acc_all": after.accuracy(),
            "forgetting": acc_old_before - acc_old,
            **(buf.figures(self.data.spikes.nb_steps * self.data.spikes.nb_units) if buf is not None else NO_BUFFER),
            **(self.activity[-1] if self.activity else {}),
            "activity_per_task": self.activity,
            "replay_activity": self.replay_activity(),
            "pretrain_test_accuracy": acc_old_before,
            "pretrain_seconds": self.pretrain_info["seconds"],
            "pretrain_samples_per_second": self.pretrain_info["samples_per_second"],
            "pretrain_cached": self.pretrain_cached,
            "cl_seconds": self.ctx.timer.seconds,
            "cl_samples_per_second": self.ctx.timer.rate,
            "activity_seconds": self.activity_seconds,
            "accuracy_matrix": matrix.tolist(),
            **matrix_metrics(matrix),
            **val_figures(self.val_matrix, self.tasks),
            "task_names": [t.name for t in self.tasks],
            "fingerprint": self.fingerprint,
            "code": code_fingerprint(),
            "git_sha": git_sha(),
            "versions": versions(),
        }
        return {k: (float(v) if isinstance(v, np.floating) else v) for k, v in summary.items()}

    def _pretrain_key(self) -> str:
        """The pretraining cache key: everything that determines the pretrained model, as plain values."""
        cfg, task = self.cfg, self.tasks[0]
        split = OmegaConf.to_container(cfg.split, resolve=True)
        return cache_key({
            "code": code_fingerprint(),
            "data": data_fingerprint(self.data),
            "partition": dataclasses.asdict(self.files.partition),
            # What is learned after pretraining does not change it, unless a pretraining plugin (joint
            # training) reads the later tasks too.
            "split": split if self.pretraining.plugins else {k: v for k, v in split.items() if k != "new_classes"},
            "train_idx": index_hash(task.train),
            "test_idx": index_hash(task.test),
            "model": OmegaConf.to_container(cfg.model, resolve=True),
            "pretrain": OmegaConf.to_container(cfg.pretrain, resolve=True),
            "loss": OmegaConf.to_container(cfg.loss, resolve=True),
            "seed": self.seed,
        })


def val_figures(val_matrix: list[list[float]], tasks: list) -> dict[str, Any]:
    """The validation counterparts of the test figures (what tuning compares): ``val_acc_all`` (accuracy on
    every task's validation part at the end, pooled), ``val_accuracy_matrix``, ``val_acc_new_mean``, ``val_bwt``."""
    if not val_matrix:
        return {"val_acc_all": None}
    matrix = np.array(val_matrix)
    sizes = np.array([len(t.val) for t in tasks])
    derived = matrix_metrics(matrix)
    return {"val_acc_all": float(np.nansum(matrix[-1] * sizes) / sizes.sum()), "val_accuracy_matrix": matrix.tolist(),
            "val_acc_new_mean": derived["acc_new_mean"], "val_bwt": derived["bwt"]}


def human_summary(s: dict[str, Any]) -> list[str]:
    """The lines the log ends with: accuracies before/after, memory."""
    lines = [
        f"summary ({s['dataset']}, {s['split']}, {s['strategy']}"
        + (f", depth {s['latent_depth']}" if s["latent_depth"] is not None else "")
        + (f", compression 1:{s['compression_ratio']} {s['codec']}" if s["compression_ratio"] else "") + ")",
        f"  old classes: {s['acc_old_before']:.3f} before -> {s['acc_old']:.3f} after (forgetting {s['forgetting']:+.3f})",
        f"  new data: {s['acc_new_before']:.3f} before -> {s['acc_new']:.3f} after; mean accuracy on each new task "
        f"right after learning it: {s['acc_new_mean']:.3f}",
        f"  final accuracy on all test data: {s['acc_all']:.3f}",
    ]
    if s.get("gap_to_joint") is not None and s["strategy"] != "joint":
        lines.append(f"  joint training (upper bound): {s['joint_acc_all']:.3f} on all test data, "
                     f"{s['gap_to_joint']:+.3f} above this run")
    if s["buffer_samples"]:
        lines.append(f"  replay memory: {s['buffer_samples']} samples in {s['buffer_bytes']:,} bytes "
                     f"({s['buffer_bytes_1bit']:,.0f} bytes at 1 bit/spike); raw rehearsal of the same samples: "
                     f"{s['raw_rehearsal_bytes_1bit']:,.0f} bytes at 1 bit/spike")
    return lines
