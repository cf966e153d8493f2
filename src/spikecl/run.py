"""One experiment from a composed config: data, pretrained model, continual learning, run folder.

``run(cfg)`` is what ``python -m spikecl`` calls; tests call it directly with a config from Hydra's
compose API and an output folder. The run folder gets ``spikecl.log``, ``metrics.csv`` (rewritten after
every evaluation), ``model.pt``, ``per_group_accuracy.csv`` and, last, ``summary.json``: a folder with a
completed summary is a finished run, and running the same job again (a resumed sweep) skips it.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from spikecl.cl.metrics import (Recorder, backward_transfer, forgetting_per_task, per_group_accuracy,
                                task_accuracies)
from spikecl.cl.strategies import Context, Strategy
from spikecl.config import check_config
from spikecl.data import SpikeDataset, load_dataset, make_tasks
from spikecl.data.splits import check_split_against_data
from spikecl.engine import Evaluation, Timer, evaluate, show_progress
from spikecl.models.lif import RSNN
from spikecl.pretrain import pretrain, pretrained
from spikecl.report.runs import read_completed_summary
from spikecl.utils.atomic import write_json, write_text, write_with
from spikecl.utils.provenance import git_sha, versions

log = logging.getLogger("spikecl")


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA when available, else CPU (``cuda`` without a GPU is rejected by check_config)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Fix Python's, NumPy's and torch's global generators (spikecl itself uses explicit generators)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def hydra_output_dir() -> Path:
    """Hydra's output folder of the running job."""
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)


def _attach_log_file(folder: Path) -> logging.Handler | None:
    """Outside Hydra (tests, notebooks) write spikecl.log ourselves; Hydra's job logging does it otherwise."""
    target = (folder / "spikecl.log").resolve()
    for h in logging.getLogger().handlers:
        if isinstance(h, logging.FileHandler) and Path(h.baseFilename).resolve() == target:
            return None
    handler = logging.FileHandler(target)
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    logging.getLogger().addHandler(handler)
    if logging.getLogger().level > logging.INFO:
        logging.getLogger().setLevel(logging.INFO)
    return handler


def run(cfg: DictConfig, output_dir: str | Path | None = None) -> dict[str, Any]:
    """Run the experiment ``cfg`` and write its run folder; returns the summary."""
    check_config(cfg)
    folder = Path(output_dir) if output_dir is not None else hydra_output_dir()
    folder.mkdir(parents=True, exist_ok=True)
    done = read_completed_summary(folder)
    if done is not None:
        log.info("skipping: %s already holds a completed run (delete its summary.json to run it again)", folder)
        return done
    handler = _attach_log_file(folder)
    try:
        return _run(cfg, folder)
    finally:
        if handler is not None:
            logging.getLogger().removeHandler(handler)
            handler.close()


def _run(cfg: DictConfig, folder: Path) -> dict[str, Any]:
    device = resolve_device(cfg.device.name)
    if cfg.device.num_threads:
        torch.set_num_threads(cfg.device.num_threads)
    seed_everything(cfg.seed)
    progress = show_progress(cfg.progress)
    write_text(folder / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))

    data = load_dataset(cfg.dataset, cfg.cache_dir)
    check_split_against_data(cfg.split, data)
    tasks = make_tasks(data, cfg.split, cfg.dataset.protocol, cfg.dataset.test_fraction, cfg.seed)
    progressive = cfg.split.name == "progressive"
    log.info("data set %r (%s): %d samples; split %s: %s", data.name, ", ".join(data.files), len(data),
             cfg.split.name, "; ".join(f"{t.name}: {len(t.train)} train / {len(t.test)} test" for t in tasks))

    nb_outputs = cfg.model.nb_outputs or data.num_classes
    torch.manual_seed(cfg.seed)
    model: RSNN = instantiate(cfg.model, nb_outputs=nb_outputs).to(device)
    recorder = Recorder(folder / "metrics.csv", tasks)
    all_test = np.concatenate([t.test for t in tasks])

    def evaluation() -> Evaluation:
        return evaluate(model, data.spikes, data.labels, all_test, cfg.eval.batch_size, device)

    # ------------------------------------------------------------------------------------ pretraining
    def train() -> dict[str, Any]:
        def on_epoch(epoch: int, loss: float) -> dict[str, float]:
            if not cfg.eval.every_epoch and epoch != cfg.pretrain.epochs:
                return {}
            accs = recorder.record("pretrain", 0, epoch, evaluation(), progressive, loss)
            log.info("pretrain epoch %d/%d: loss %.4f, test accuracy %.4f", epoch, cfg.pretrain.epochs, loss,
                     accs["old"])
            return accs

        info = pretrain(model, cfg, data, tasks[0], device, on_epoch, progress)
        return {**info, "rows": [r for r in recorder.rows if r["phase"] == "pretrain"]}

    pre_info, cached = pretrained(model, cfg, data, tasks[0], device, train)
    if cached:  # the run folder still gets the pretraining curve
        recorder.rows[:0] = pre_info["rows"]

    before = evaluation()
    matrix = [task_accuracies(before, tasks)]
    accs0 = recorder.record("cl", 0, 0, before, progressive)
    log.info("pretrained model: old-task test accuracy %.4f, all %.4f", accs0["old"], accs0["all"])

    # ------------------------------------------------------------------------------ continual learning
    strategy: Strategy = instantiate(cfg.strategy)
    timer = Timer()

    last: dict[int, Evaluation] = {}  # the evaluation after each task's final epoch, reused for the matrix

    def on_cl_epoch(task_index: int, epoch: int, loss: float) -> None:
        if not cfg.eval.every_epoch and epoch != strategy.epochs:
            return
        ev = evaluation()
        if epoch == strategy.epochs:
            last[task_index] = ev
        accs = recorder.record("cl", task_index, epoch, ev, progressive, loss)
        log.info("task %d (%s) epoch %d/%d: loss %.4f, old %.4f, new %.4f, all %.4f", task_index,
                 tasks[task_index].name, epoch, strategy.epochs, loss, accs["old"], accs["new"], accs["all"])

    ctx = Context(model=model, data=data, tasks=tasks, device=device,
                  compression=OmegaConf.to_container(cfg.compression, resolve=True), seed=cfg.seed,
                  on_epoch=on_cl_epoch, reg=(cfg.loss.reg_l1, cfg.loss.reg_l2), progress=progress, timer=timer)
    strategy.setup(ctx)
    after = before
    for i in range(1, len(tasks)):
        strategy.learn(ctx, i)
        after = last.pop(i) if i in last else evaluation()  # no epoch evaluated when strategy.epochs=0
        matrix.append(task_accuracies(after, tasks))
        log.info("after task %d (%s): accuracy per task %s", i, tasks[i].name,
                 " ".join(f"{a:.3f}" for a in matrix[-1]))

    # ------------------------------------------------------------------------------------- run folder
    write_with(folder / "model.pt", lambda p: torch.save({k: v.cpu() for k, v in model.state_dict().items()}, p))
    write_text(folder / "per_group_accuracy.csv", per_group_accuracy(before, after, data))
    summary = _summary(cfg, data, tasks, np.array(matrix), before, after, strategy, pre_info, cached, timer, device)
    write_json(folder / "summary.json", summary)
    _log_human_summary(summary, strategy)
    return summary


def _summary(cfg: DictConfig, data: SpikeDataset, tasks, matrix: np.ndarray, before: Evaluation,
             after: Evaluation, strategy: Strategy, pre_info: dict, cached: bool, timer: Timer,
             device: torch.device) -> dict[str, Any]:
    new_test = np.concatenate([t.test for t in tasks[1:]])
    buf = strategy.buffer
    acc_old_before, acc_old = matrix[0, 0], matrix[-1, 0]
    summary: dict[str, Any] = {
        "status": "completed",
        "dataset": data.name,
        "protocol": cfg.dataset.protocol,
        "split": cfg.split.name,
        "speaker": cfg.split.get("speaker"),
        "new_class": cfg.split.get("new_class"),
        "strategy": strategy.name,
        "latent_depth": strategy.latent_depth,
        "compression_ratio": cfg.compression.ratio if buf is not None else None,
        "codec": _codec(cfg, strategy) if buf is not None else None,
        "buffer_size": strategy.buffer_size,
        "epochs": strategy.epochs,
        "lr": strategy.lr,
        "seed": cfg.seed,
        "device": str(device),
        "acc_old_before": acc_old_before,
        "acc_new_before": before.accuracy(before.subset(new_test)),
        "acc_old": acc_old,
        "acc_new": after.accuracy(after.subset(new_test)),
        "acc_all": after.accuracy(),
        "forgetting": acc_old_before - acc_old,
        "buffer_samples": len(buf) if buf is not None else 0,
        "buffer_bytes": buf.nbytes if buf is not None else 0,
        "buffer_bytes_1bit": buf.nbytes_1bit if buf is not None else 0,
        "bytes_per_sample": buf.bytes_per_sample if buf is not None else 0,
        "raw_rehearsal_bytes_1bit": (len(buf) if buf is not None else 0) * data.spikes.nb_steps * data.spikes.nb_units / 8,
        "pretrain_test_accuracy": acc_old_before,
        "pretrain_seconds": pre_info["seconds"],
        "pretrain_samples_per_second": pre_info["samples_per_second"],
        "pretrain_cached": cached,
        "cl_seconds": timer.seconds,
        "cl_samples_per_second": timer.rate,
        "accuracy_matrix": matrix.tolist(),
        "acc_new_mean": float(np.mean([matrix[i, i] for i in range(1, len(tasks))])),
        "bwt": backward_transfer(matrix),
        "forgetting_per_task": forgetting_per_task(matrix),
        "task_names": [t.name for t in tasks],
        "git_sha": git_sha(),
        "versions": versions(),
    }
    return {k: (float(v) if isinstance(v, np.floating) else v) for k, v in summary.items()}


def _codec(cfg: DictConfig, strategy: Strategy) -> str:
    if strategy.name == "rehearsal":
        return cfg.compression.input_codec
    return "sum_impulse" if strategy.latent_depth == 0 else cfg.compression.codec


def _log_human_summary(s: dict[str, Any], strategy: Strategy) -> None:
    lines = [
        f"summary ({s['dataset']}, {s['split']}, {s['strategy']}"
        + (f", depth {s['latent_depth']}" if s["latent_depth"] is not None else "")
        + (f", compression 1:{s['compression_ratio']} {s['codec']}" if s["compression_ratio"] else "") + ")",
        f"  old classes: {s['acc_old_before']:.3f} before -> {s['acc_old']:.3f} after (forgetting {s['forgetting']:+.3f})",
        f"  new data: {s['acc_new_before']:.3f} before -> {s['acc_new']:.3f} after; mean accuracy on each new task "
        f"right after learning it: {s['acc_new_mean']:.3f}",
        f"  final accuracy on all test data: {s['acc_all']:.3f}",
    ]
    if strategy.buffer is not None:
        lines.append(f"  replay memory: {s['buffer_samples']} samples in {s['buffer_bytes']:,} bytes "
                     f"({s['buffer_bytes_1bit']:,.0f} bytes at 1 bit/spike); raw rehearsal of the same samples: "
                     f"{s['raw_rehearsal_bytes_1bit']:,.0f} bytes at 1 bit/spike")
    for line in lines:
        log.info(line)
