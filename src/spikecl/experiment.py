"""An experiment, from Python or from the command line: pretrain, learn each task, write the run folder.

``Experiment(cfg, folder)`` builds the config into objects once (:func:`spikecl.build.build_setup`), holds
its run folder (:class:`~spikecl.run_folder.RunFolder`), and, unless the folder already holds the same
finished run, loads the data, cuts it into tasks and builds the model. Then :meth:`Experiment.pretrain`,
:meth:`Experiment.learn` for each task and :meth:`Experiment.write_outputs`, or :meth:`Experiment.run` for all
of it, resuming from the folder's last checkpoint (what ``python -m spikecl`` does). Its parts do the jobs:
the strategies train (:mod:`spikecl.cl.loop`), the evaluator evaluates (:mod:`spikecl.evaluation`), the
checkpoints keep the state (:mod:`spikecl.checkpoints`), the summary assembles the figures
(:mod:`spikecl.summary`).
"""

from __future__ import annotations

import dataclasses
import logging
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from spikecl.build import Setup, build_setup
from spikecl.checkpoints import Checkpoints, save_torch
from spikecl.cl import Context
from spikecl.cl.context import Timer
from spikecl.cl.metrics import Evaluation, Recorder, per_group_accuracy
from spikecl.errors import ConfigError, Interrupted, OutputError
from spikecl.evaluation import Evaluator
from spikecl.fingerprint import fingerprint
from spikecl.loggers import MultiLogger
from spikecl.plot import plot_run
from spikecl.pretrained_cache import pretrained, pretraining_key
from spikecl.report.joint import joint_figures, sibling_runs
from spikecl.run_folder import RunFolder
from spikecl.summary import human_summary, summary
from spikecl.utils import interrupts, streams
from spikecl.utils.atomic import write_json, write_text
from spikecl.utils.provenance import code_fingerprint, git_sha, versions

log = logging.getLogger("spikecl")


class Experiment:
    """One continual-learning experiment and its run folder.

    Attributes: ``setup`` (the built config), ``model``, ``data``, ``tasks``, ``strategy`` and ``pretraining``
    (with their ``plugins``, e.g. the replay buffer: ``strategy.plugins["replay"].buffer``), ``evaluator``
    (``matrix``: row i is the test accuracy on every task after task i) and ``learned`` (how many tasks after
    pretraining are done). ``completed`` is the summary when the folder already held this finished run.
    """

    def __init__(self, cfg: DictConfig, folder: str | Path, setup: Setup | None = None) -> None:
        self.setup = setup = setup or build_setup(cfg)  # a bad value stops here, before any file is read
        self.folder = RunFolder(folder)
        self._scope = ExitStack()
        try:
            self._scope.enter_context(self.folder.hold())
            self._scope.enter_context(self.folder.log_file())
            self._prepare(cfg)
        except BaseException:
            self._scope.close()
            raise

    def _prepare(self, cfg: DictConfig) -> None:
        """Reuse a finished run of the same fingerprint, or load the data and build the model and the parts."""
        setup = self.setup
        self.fingerprint = fingerprint(cfg, setup.files.content(setup.cache_dir))
        self.completed = self.folder.reuse(self.fingerprint)
        self.learned = 0
        if self.completed is not None:
            return
        hydra = OmegaConf.to_container(cfg.hydra, resolve=False) if "hydra" in cfg else None
        self.folder.write_records(setup.config, self.fingerprint, hydra)
        self.pretraining, self.strategy = setup.pretraining, setup.strategy
        self.device = setup.device.activate()
        self.data = setup.files.load(setup.cache_dir)
        self.tasks = setup.split.tasks(self.data, setup.files.partition, setup.seed)
        log.info("data set %r (%s): %d samples; split %s: %s", self.data.name, ", ".join(self.data.files),
                 len(self.data), setup.split.name,
                 "; ".join(f"{t.name}: {len(t.train)} train / {len(t.test)} test" for t in self.tasks))
        nb_outputs = setup.nb_outputs or self.data.num_classes
        if nb_outputs < self.data.num_classes:
            raise ConfigError(f"model.nb_outputs={nb_outputs} is not valid: the data set has {self.data.num_classes} "
                              f"classes; set model.nb_outputs=null (one output per class) or >= {self.data.num_classes}")
        streams.global_generators(setup.seed)
        self.model = setup.model(nb_outputs=nb_outputs).to(self.device)
        self.logger = MultiLogger([make(run_dir=self.folder.path) for make in setup.loggers])
        self._scope.callback(self.logger.close)
        files = setup.files
        self.evaluator = Evaluator(self.model, self.data, self.tasks, self.device, setup.eval,
                                   Recorder(self.folder.path / "metrics.csv", self.tasks, self.logger),
                                   per_task=setup.split.per_task, epochs=(self.pretraining.epochs, self.strategy.epochs),
                                   step_seconds=files.max_time / files.nb_steps, train_depth=self.strategy.latent_depth)
        self.ctx = Context(model=self.model, data=self.data, tasks=self.tasks, device=self.device, seed=setup.seed,
                           compression=setup.compression, reg=setup.reg, progress=setup.progress,
                           on_epoch=self.evaluator.on_epoch)
        self.checkpoints = Checkpoints(self.folder.path, setup.checkpoints)
        self.pretrain_info: dict[str, Any] = {}
        self.pretrain_cached = False

    def evaluate(self, data: str = "test") -> Evaluation:
        """The whole network on every task's ``data`` part (test or val), from raw input, without autograd."""
        return self.evaluator.evaluate(data)

    # ---------------------------------------------------------------------------------------- phases

    def pretrain(self) -> Evaluation:
        """Train task 0 (or load it from the pretraining cache) and evaluate the pretrained model."""
        def train() -> dict[str, Any]:
            timer = Timer()
            self.pretraining.learn(dataclasses.replace(self.ctx, timer=timer), 0)
            return {"seconds": timer.seconds, "samples_per_second": timer.rate,
                    "rows": [r for r in self.evaluator.recorder.rows if r["phase"] == "pretrain"]}

        self.evaluator.initial_model()
        key = pretraining_key(data=self.data, partition=self.setup.files.partition, tasks=self.tasks,
                              model=self.setup.model, pretraining=self.pretraining, reg=self.setup.reg,
                              seed=self.setup.seed)
        self.pretrain_info, self.pretrain_cached = pretrained(self.model, key, self.setup.cache_dir, self.device, train)
        if self.pretrain_cached:  # the run folder still gets the pretraining curve
            self.evaluator.recorder.rows[:0] = self.pretrain_info["rows"]
        before = self.evaluator.after_task(0)
        log.info("pretrained model: test accuracy on the pretraining task %.4f, on all %.4f",
                 self.evaluator.matrix[0][0], before.accuracy())
        return before

    def learn(self, task: int) -> Evaluation:
        """Learn task ``task`` (1 .. len(tasks)-1, in order) with the strategy; returns the test evaluation
        after it."""
        if not self.evaluator.matrix:
            raise RuntimeError("call pretrain() before learn()")
        if task != self.learned + 1 or task >= len(self.tasks):
            raise ValueError(f"the next task to learn is {self.learned + 1} of 1..{len(self.tasks) - 1}, not {task}")
        self.strategy.learn(self.ctx, task)
        after = self.evaluator.after_task(task)
        self.learned = task
        log.info("after task %d (%s): test accuracy per task %s", task, self.tasks[task].name,
                 " ".join(f"{a:.3f}" for a in self.evaluator.matrix[-1]))
        return after

    def run(self) -> dict[str, Any]:
        """Pretrain, learn every task (from where the folder's last checkpoint left off), write the run folder;
        returns the summary. A checkpoint follows pretraining and every task (``checkpoints``). A folder that
        already held this finished run is returned as it is."""
        if self.completed is not None:
            return self.completed
        try:
            self.resume()
            if not self.evaluator.matrix:
                self.pretrain()
                self.checkpoint()
            for task in range(self.learned + 1, len(self.tasks)):
                self.learn(task)
                self.checkpoint()
            return self.write_outputs()
        except KeyboardInterrupt:
            interrupts.clear()
            raise Interrupted(f"interrupted; {self._resume_hint()}") from None
        except OSError as exc:
            if exc.filename is None or self.folder.path.resolve() not in Path(exc.filename).resolve().parents:
                raise
            raise OutputError(f"cannot write {exc.filename} ({exc.strerror}); free space or choose another folder "
                              f"(hydra.run.dir=...); {self._resume_hint()}") from None

    def _resume_hint(self) -> str:
        if not self.evaluator.matrix or self.setup.checkpoints == "none":
            return "a rerun of the same command starts this run over"
        done = f"task {self.learned}" if self.learned else "pretraining"
        return f"rerun the same command to resume after {done} (what was finished is kept)"

    # ----------------------------------------------------------------------------------- checkpoints

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to go on after the last finished task: the model, every plugin's state, the
        evaluations so far, the timers, the loggers' positions and torch's random state. No optimiser state:
        every task starts a fresh optimiser, as the paper."""
        return {"fingerprint": self.fingerprint.digest, "learned": self.learned,
                "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
                "plugins": self.strategy.state_dict(), "evaluator": self.evaluator.state_dict(),
                "timer": [self.ctx.timer.seconds, self.ctx.timer.samples], "pretrain_info": self.pretrain_info,
                "pretrain_cached": self.pretrain_cached, "logger": self.logger.state_dict(),
                "torch_rng": torch.get_rng_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Go on from a :meth:`state_dict` of the same experiment."""
        self.learned = int(state["learned"])
        self.model.load_state_dict(state["model"])
        self.strategy.load_state_dict(state["plugins"])
        self.evaluator.load_state_dict(state["evaluator"])
        self.ctx.timer.seconds, self.ctx.timer.samples = state["timer"]
        self.pretrain_info, self.pretrain_cached = state["pretrain_info"], state["pretrain_cached"]
        self.logger.resume(state["logger"])
        torch.set_rng_state(state["torch_rng"])

    def checkpoint(self) -> Path | None:
        """Write ``checkpoints/task<learned>.pt`` (``checkpoints=none``: nothing; ``last``: only the newest)."""
        return self.checkpoints.save(self.learned, self.state_dict())

    def resume(self) -> bool:
        """Load the newest checkpoint of this run folder if it is of this experiment (same fingerprint);
        returns whether one was loaded. Without one, whatever an interrupted attempt logged is dropped."""
        state = self.checkpoints.latest(self.fingerprint.digest)
        if state is None:
            self.logger.resume(None)
            return False
        self.load_state_dict(state)
        return True

    # --------------------------------------------------------------------------------------- outputs

    def write_outputs(self) -> dict[str, Any]:
        """``model.pt``, ``per_group_accuracy.csv``, the plots and, last, ``summary.json``; returns the summary.
        The loggers get the accuracy matrix and the hyper-parameters with the final figures."""
        folder, ev = self.folder.path, self.evaluator
        save_torch(folder / "model.pt", {k: v.cpu() for k, v in self.model.state_dict().items()})
        write_text(folder / "per_group_accuracy.csv", per_group_accuracy(ev.before, ev.after, self.data))
        result = self.summary()
        # How far from joint training (the upper bound), when a finished joint run of the same setting is
        # next to this one (a sweep's other jobs); the report looks further.
        result.update(joint_figures(result, sibling_runs(folder), exclude=folder, config=self.setup.config))
        self.logger.log_matrix("accuracy_matrix", np.array(ev.matrix))
        final = {k: v for k, v in result.items() if k.startswith(("acc_", "val_acc_", "bwt", "fwt", "forgetting"))
                 and isinstance(v, (int, float))}
        self.logger.log_hparams(self.setup.config, final)
        if self.setup.plots:  # one test sample of the last task, drawn by the final model
            plot_run(self.model, self.data, int(self.tasks[-1].test[0]), folder / "plots",
                     self.setup.files.max_time / self.setup.files.nb_steps, result.get("stored_activity"))
        write_json(folder / "summary.json", result)
        log.info("run folder: %s", folder)
        for line in human_summary(result):
            log.info(line)
        return result

    def summary(self) -> dict[str, Any]:
        """Every figure of the run so far (what ``summary.json`` holds)."""
        strategy, timer = self.strategy, self.ctx.timer
        head = {"dataset": self.data.name, "protocol": self.setup.files.partition.protocol,
                "strategy": strategy.name, "plugins": list(strategy.plugins), "latent_depth": strategy.latent_depth,
                "epochs": strategy.epochs, "lr": strategy.lr, "seed": self.setup.seed, "device": str(self.device)}
        timings = {"pretrain_seconds": self.pretrain_info["seconds"],
                   "pretrain_samples_per_second": self.pretrain_info["samples_per_second"],
                   "pretrain_cached": self.pretrain_cached, "cl_seconds": timer.seconds,
                   "cl_samples_per_second": timer.rate}
        plugins = [plugin.figures(self.ctx) for plugin in (*self.pretraining.plugins.values(),
                                                            *strategy.plugins.values())]
        provenance = {"fingerprint": self.fingerprint.digest, "code": code_fingerprint(), "git_sha": git_sha(),
                      "versions": versions()}
        return summary(head=head, evaluator=self.evaluator, tasks=self.tasks,
                       sections=[self.setup.split.figures(), *plugins, timings, provenance])

    def close(self) -> None:
        """Close the loggers (their files are complete after this) and release the run folder."""
        self._scope.close()

    def __enter__(self) -> Experiment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
