"""The benchmark cases: spikecl against the straightforward reference, side by side in one process.

Both sides start every case from the same weights (copies of one model) and see the same minibatches; their
timed repeats alternate (:func:`~spikecl.bench.measure.measure_pair`), so both see the same load of a shared
machine.
The reference gets its dense input batches prepared outside the timed region; spikecl's timings cover its
whole engine path (batches built from the compact event list, entry activity, loss, backward, optimiser
step), as :meth:`spikecl.cl.Strategy.train_epoch` and :func:`spikecl.evaluation.evaluate` run it.
"""

from __future__ import annotations

import copy
import logging
import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig

from spikecl.bench.measure import PeakMemory, Timing, measure_pair, synchronize
from spikecl.bench.shd_files import write_random_shd_pair
from spikecl.cl import Context, Strategy
from spikecl.cl.sources import CachedLatents, RawSource
from spikecl.cli import config_dir
from spikecl.errors import ConfigError
from spikecl.data import SpikeDataset, load_dataset
from spikecl.cl.loop import frozen_except
from spikecl.cl.minibatch import Piece
from spikecl.evaluation import evaluate
from spikecl.models import RSNN, class_scores
from spikecl.models.reference import reference_forward, reference_loss

log = logging.getLogger(__name__)

# Speed-up targets per model preset (conf/model): training (pretrain) and inference for every neuron type,
# and for the paper's LIF network the latent-replay step at depth 2.
TARGETS = {"rsnn": {"pretrain": 3.0, "latent_replay_d2": 10.0, "inference": 2.0},
           "adlif": {"pretrain": 3.0, "inference": 2.0}}
DATA_TARGETS_S = {"cold": 10.0, "cached": 1.0}


@dataclass
class Settings:
    """What to measure and how often."""

    device: str = "cpu"
    model: str = "rsnn"           # the model preset (conf/model/<model>.yaml)
    batch_size: int = 64
    batches: int = 4              # minibatches per timed repeat
    repeats: int = 5
    warmup: int = 1
    weight_scale: float | None = None  # None: the config's (the paper's 0.2)
    hidden: tuple[int, ...] | None = None  # None: the config's (the paper's 200, 100, 50)
    depths: tuple[int, ...] = (1, 2, 3)
    lr: float = 2e-4
    data_samples: int = 10_000    # size of the generated SHD-format set for the data timings
    data_mean_spikes: float = 5_000.0
    data_cold_repeats: int = 2
    fallback_mean_spikes: float = 3_300.0  # ~4.6 % of a 100 x 700 grid after binning
    threads: int | None = None   # None: each side at the faster of 1 thread and torch's default
    seed: int = 0
    quick: bool = False

    @classmethod
    def quick_settings(cls, **overrides) -> Settings:
        """Tiny sizes for a smoke test (seconds, not minutes)."""
        small = {"batch_size": 8, "batches": 2, "repeats": 2, "warmup": 1, "hidden": (32, 24, 16), "threads": 1,
                 "data_samples": 200, "data_mean_spikes": 400.0, "data_cold_repeats": 1, "quick": True}
        return cls(**{**small, **overrides})


def compose_config(overrides: list[str]) -> DictConfig:
    """The project's composed config (conf/), as the command line would build it."""
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose("config", overrides=overrides)


def bench_dataset(cfg: DictConfig, workdir: Path, settings: Settings) -> tuple[SpikeDataset, str]:
    """The embedded data set, or (if this installation lacks it) a generated SHD-like random set."""
    needed = settings.batch_size * settings.batches
    try:
        data = load_dataset(cfg.dataset, workdir / "cache")
        if len(data) >= needed:
            return data, f"embedded data set '{cfg.dataset.name}' ({len(data)} samples)"
        reason = f"the embedded data set has {len(data)} samples, fewer than the {needed} needed"
    except ConfigError as exc:
        reason = str(exc).split(". ")[0]  # its first sentence says what is missing
    folder = workdir / "generated"
    write_random_shd_pair(folder, max(needed, 64), settings.fallback_mean_spikes, seed=settings.seed)
    data = load_dataset({**cfg.dataset, "root": str(folder), "name": "generated"}, workdir / "cache")
    return data, (f"generated SHD-like random set ({len(data)} samples, ~{settings.fallback_mean_spikes:.0f} "
                  f"spikes each) because {reason}")


# ------------------------------------------------------------------------------------------------ the two sides


def reference_train(model: RSNN, xs: list[torch.Tensor], ys: list[torch.Tensor], depth: int | None,
                    lr: float) -> Callable[[], float]:
    """One pass of the paper's training loop over the batches: full forward from dense raw input every step,
    the optimiser over the parameters above ``depth`` (all for None), the frozen ones without gradient."""
    params = model.layer_parameters(depth)
    frozen_except(model, params)
    optimizer = torch.optim.Adamax(params, lr=lr, betas=(0.9, 0.999))

    def run() -> float:
        total = 0.0
        for x, y in zip(xs, ys):
            loss = reference_loss(model, x, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item()
        return total

    return run


def spikecl_train(model: RSNN, data: SpikeDataset, source, batches: list[np.ndarray], depth: int, params: list,
                  lr: float, device: torch.device) -> Callable[[], float]:
    """One epoch of spikecl's training loop (no plugins) over the same batches, entering at ``depth``."""
    frozen_except(model, params)
    strategy = Strategy(name="bench", latent_depth=depth, epochs=1, lr=lr, batch_size=len(batches[0]),
                        optimizer=partial(torch.optim.Adamax, lr=lr, betas=(0.9, 0.999)))
    ctx = Context(model=model, data=data, tasks=[], device=device, seed=0, latent_depth=depth,
                  optimizer=strategy.optimizer(params), trainable=params)
    plan = [[Piece(source, b)] for b in batches]
    return lambda: strategy.train_epoch(ctx, 0, plan)[0]


def reference_inference(model: RSNN, xs: list[torch.Tensor]) -> Callable[[], np.ndarray]:
    """Predictions of the reference forward without autograd (dense input)."""

    def run() -> np.ndarray:
        with torch.no_grad():
            return np.concatenate([class_scores(reference_forward(model, x)[0]).argmax(1).cpu().numpy() for x in xs])

    return run


# ------------------------------------------------------------------------------------------------ the cases


def activity(model: RSNN, data: SpikeDataset, idx: np.ndarray, device: torch.device) -> dict[str, float]:
    """Fraction of nonzero input entries and of spiking (neuron, step) pairs per hidden layer."""
    x = data.spikes.csr(idx, device=device)
    out = {"input": x.values().numel() / float(len(idx) * data.spikes.nb_steps * data.spikes.nb_units)}
    with torch.inference_mode():
        for d in range(1, model.nb_layers + 1):
            out[f"layer{d}"] = float(model.latent(x, d, data.spikes.nb_steps).float().mean())
    return out


def equivalence(model: RSNN, data: SpikeDataset, idx: np.ndarray, device: torch.device) -> dict[str, float]:
    """Fast path against the reference on one batch: spikes, loss and gradients of every parameter."""
    y = torch.as_tensor(data.labels[idx], device=device)
    fast = copy.deepcopy(model)
    out, spikes = fast.from_latent(fast.input_current(data.spikes.csr(idx, device=device), data.spikes.nb_steps), 0,
                                   return_spikes=True)
    loss = F.nll_loss(F.log_softmax(class_scores(out), dim=1), y)
    grads = torch.autograd.grad(loss, list(fast.parameters()))
    ref_out, ref_spikes = reference_forward(model, data.spikes.dense(idx, device=device))
    ref_loss = F.nll_loss(F.log_softmax(class_scores(ref_out), dim=1), y)
    ref_grads = torch.autograd.grad(ref_loss, list(model.parameters()))
    rel = [float((g - r).abs().max() / r.abs().max().clamp_min(1e-30)) for g, r in zip(grads, ref_grads)]
    return {
        "last_layer_spike_mismatches": int((spikes != ref_spikes).sum()),
        "loss_abs_diff": abs(loss.item() - ref_loss.item()),
        "readout_max_abs_diff": float((out - ref_out).detach().abs().max()),
        "grad_max_rel_diff": max(rel),
    }


def thread_counts(settings: Settings, device: torch.device) -> tuple[int, ...]:
    """CPU thread counts to time each side with (the fastest is reported): the given one, else 1 and torch's
    default. Many small operations can run slower on two threads than on one (waking the second thread),
    large products faster, and which wins depends on the machine's load: each side gets its best."""
    if device.type != "cpu":
        return ()
    if settings.threads is not None:
        return (settings.threads,)
    return tuple(sorted({1, torch.get_num_threads()}))


def case(name: str, description: str, ref: Timing | None, fast: Timing, target: float | None = None) -> dict:
    """One row of the result: both timings and the speed-up (reference time / spikecl time)."""
    speedup = ref.median / fast.median if ref is not None else None
    return {
        "name": name,
        "description": description,
        "reference": ref.as_dict() if ref is not None else None,
        "spikecl": fast.as_dict(),
        "speedup": speedup,
        "target_speedup": target,
        "met": None if target is None or speedup is None else bool(speedup >= target),
    }


def model_cases(cfg: DictConfig, data: SpikeDataset, settings: Settings, device: torch.device) -> tuple[list, dict]:
    """Training, latent replay and inference cases; returns the rows and the activity/equivalence notes."""
    targets = TARGETS.get(settings.model, {})
    torch.manual_seed(settings.seed)
    extra = {} if settings.weight_scale is None else {"weight_scale": settings.weight_scale}
    extra["dropout"] = 0.0  # the reference has none: both sides do the same work
    if settings.hidden is not None:
        extra["hidden"] = list(settings.hidden)
    base: RSNN = instantiate(cfg.model, nb_outputs=data.num_classes, **extra).to(device)
    n = settings.batch_size * settings.batches
    idx = np.arange(n)
    batches = [idx[i:i + settings.batch_size] for i in range(0, n, settings.batch_size)]
    xs = [data.spikes.dense(b, device=device) for b in batches]
    ys = [torch.as_tensor(data.labels[b], device=device) for b in batches]
    counts = thread_counts(settings, device)
    timed = {"device": device, "warmup": settings.warmup, "repeats": settings.repeats, "threads": counts}
    notes = {"activity": activity(base, data, batches[0], device),
             "equivalence": equivalence(copy.deepcopy(base), data, batches[0], device)}
    rows = []

    ref_model, fast_model = copy.deepcopy(base), copy.deepcopy(base)
    source = RawSource(fast_model, data.spikes, idx, data.labels, 0, device)
    ref, fast = measure_pair(reference_train(ref_model, xs, ys, None, settings.lr),
                             spikecl_train(fast_model, data, source, batches, 0, list(fast_model.parameters()),
                                           settings.lr, device), n, **timed)
    rows.append(case("pretrain", "pretraining step: all weights trained from raw input", ref, fast,
                     targets.get("pretrain")))

    for depth in settings.depths:
        ref_model, fast_model = copy.deepcopy(base), copy.deepcopy(base)
        memory = PeakMemory(device)
        memory.reset()
        start = time.perf_counter()
        cached = CachedLatents(fast_model, data.spikes, idx, data.labels, depth, device)
        synchronize(device)
        build = Timing(n, [time.perf_counter() - start], memory.read(), memory.at_start, memory.kind,
                       threads=torch.get_num_threads())
        # the cached samples are idx = 0..n-1, so their positions in the cache are the batches themselves
        ref, fast = measure_pair(reference_train(ref_model, xs, ys, depth, settings.lr),
                                 spikecl_train(fast_model, data, cached, batches, depth,
                                               fast_model.layer_parameters(depth), settings.lr, device), n, **timed)
        rows.append(case(f"latent_replay_d{depth}",
                         f"latent-replay step at depth {depth}: reference recomputes the frozen layers, "
                         "spikecl trains from latents cached once per phase", ref, fast,
                         targets.get(f"latent_replay_d{depth}")))
        rows.append(case(f"latent_cache_d{depth}", f"building the depth-{depth} latent cache (once per phase)",
                         None, build))

    model = copy.deepcopy(base)
    ref, fast = measure_pair(reference_inference(model, xs),
                             lambda: evaluate(model, data.spikes, data.labels, idx, settings.batch_size, device),
                             n, **timed)
    rows.append(case("inference", "evaluation without autograd (reference: torch.no_grad, dense input)", ref,
                     fast, targets.get("inference")))
    return rows, notes


def data_case(cfg: DictConfig, workdir: Path, settings: Settings) -> dict:
    """Read + bin a generated full-size SHD-format file set, cold (empty cache) and cached."""
    folder = workdir / "shd_full"
    start = time.perf_counter()
    spikes = write_random_shd_pair(folder, settings.data_samples, settings.data_mean_spikes, seed=settings.seed)
    written = time.perf_counter() - start
    dataset_cfg = {**cfg.dataset, "root": str(folder), "name": "generated-full"}
    cold, data = [], None
    for i in range(settings.data_cold_repeats):
        cache = workdir / f"data_cache_{i}"
        start = time.perf_counter()
        data = load_dataset(dataset_cfg, cache)
        cold.append(time.perf_counter() - start)
    cached = []
    for _ in range(settings.repeats):
        start = time.perf_counter()
        load_dataset(dataset_cfg, workdir / "data_cache_0")
        cached.append(time.perf_counter() - start)
    s = data.spikes
    dense = len(s) * s.nb_steps * s.nb_units * 4
    cold_t, cached_t = Timing(len(s), cold), Timing(len(s), cached)
    return {
        "samples": len(s),
        "spikes": spikes,
        "events": len(s.steps),
        "files_bytes": sum(p.stat().st_size for p in folder.glob("*.h5")),
        "write_files_s": written,
        "cold": cold_t.as_dict(),
        "cached": cached_t.as_dict(),
        "binned_nbytes": s.nbytes,
        "dense_float32_nbytes": dense,
        "dense_over_binned": dense / s.nbytes,
        "targets_s": DATA_TARGETS_S,
        "met": {"cold": cold_t.median < DATA_TARGETS_S["cold"], "cached": cached_t.median < DATA_TARGETS_S["cached"]},
    }


def machine(device: torch.device) -> dict:
    """Where the figures were taken."""
    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def base_widths(cfg: DictConfig, settings: Settings) -> tuple[int, ...]:
    """Hidden layer widths of the benchmarked model."""
    return tuple(settings.hidden) if settings.hidden is not None else tuple(int(h) for h in cfg.model.hidden)


def run_benchmark(settings: Settings, workdir: Path | None = None) -> dict:
    """Every case; returns the JSON-ready result. ``workdir`` (default: a temporary folder) receives the
    caches and generated files."""
    device = torch.device(settings.device)
    threads = torch.get_num_threads()
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    cfg = compose_config(["dataset=synthetic", f"model={settings.model}"])
    try:
        with tempfile.TemporaryDirectory(prefix="spikecl-bench-") as tmp:
            work = Path(workdir or tmp)
            data, source = bench_dataset(cfg, work, settings)
            rows, notes = model_cases(cfg, data, settings, device)
            result = {
                "settings": {**asdict(settings), "depths": list(settings.depths),
                             "hidden": list(base_widths(cfg, settings)), "nb_steps": data.spikes.nb_steps,
                             "nb_inputs": data.spikes.nb_units,
                             "weight_scale_used": settings.weight_scale if settings.weight_scale is not None
                             else float(cfg.model.weight_scale)},
                "machine": {**machine(device), "thread_counts_tried": list(thread_counts(settings, device))},
                "data_set": source,
                **notes,
                "cases": rows,
                "data": data_case(cfg, work, settings),
            }
    finally:
        torch.set_num_threads(threads)
    result["machine"]["load_average_after"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return result
