"""``python -m spikecl.bench``: run the benchmark, print the table, write ``bench.json``."""

from __future__ import annotations

import os

# OpenMP threads that spin while waiting make every parallel region crawl when the cores are shared with other
# jobs (tens of times slower on a loaded 2-core machine); sleeping waiters cost a few microseconds instead.
# Read once when the OpenMP runtime loads, i.e. before torch is imported; an explicit setting is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import logging
import sys
from pathlib import Path

import torch

from spikecl.bench.suite import Settings, run_benchmark
from spikecl.bench.table import render
from spikecl.cli import config_dir
from spikecl.utils.atomic import write_json


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m spikecl.bench", description=__doc__)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="auto: cuda when available, else cpu")
    p.add_argument("--model", default="rsnn",
                   help="model preset of conf/model/ (rsnn: the paper's LIF network, adlif: adaptive LIF)")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats per case (median reported)")
    p.add_argument("--batches", type=int, default=None, help="minibatches per timed repeat")
    p.add_argument("--out", type=Path, default=Path("bench.json"), help="where to write the JSON result")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test in seconds")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--weight-scale", type=float, default=None,
                   help="initial weight scale (default: the config's, the paper's 0.2)")
    p.add_argument("--data-samples", type=int, default=None,
                   help="samples of the generated SHD-format set for the data timings (default 10000)")
    return p.parse_args(argv)


def resolve_device(name: str) -> str:
    """The device to run on; a clear error if CUDA is asked for but absent."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device is available to torch here; use --device cpu or auto")
    return name


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    given = {k: v for k, v in {"model": args.model, "repeats": args.repeats, "batches": args.batches, "threads": args.threads,
                               "weight_scale": args.weight_scale, "data_samples": args.data_samples}.items()
             if v is not None}
    device = resolve_device(args.device)
    presets = sorted(p.stem for p in (config_dir() / "model").glob("*.yaml"))
    if args.model not in presets:
        sys.exit(f"--model {args.model} is not valid; allowed: {', '.join(presets)}")
    settings = Settings.quick_settings(device=device, **given) if args.quick else Settings(device=device, **given)
    result = run_benchmark(settings)
    print(render(result))
    write_json(args.out, result)
    print(f"\nwritten: {args.out}")
    return result


if __name__ == "__main__":
    main()
