"""``python -m spikecl.synth.stats``: statistics and a raster plot of an SHD-format data set.

Prints, per file, the figures docs/synthetic-data.md compares with SHD (samples, speakers, spikes per
sample, active channels per sample, spike-train duration, samples per class) as a Markdown table, and
optionally saves a raster plot of a few samples. Reads ``shd_{train,test}.h5`` or ``.h5.gz``.
"""

from __future__ import annotations

import argparse
import gzip
import io
import sys
from pathlib import Path

import h5py
import numpy as np


def load(path: Path) -> dict[str, np.ndarray]:
    """All samples of one SHD file, in memory: times (object array of float64), units, labels, speakers,
    keys (str)."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    with h5py.File(io.BytesIO(raw), "r") as f:
        times = f["spikes/times"][()]
        # upcast before any arithmetic: float16 seconds overflow when scaled
        for i, t in enumerate(times):
            times[i] = t.astype(np.float64)
        return {
            "times": times,
            "units": f["spikes/units"][()],
            "labels": f["labels"][()].astype(np.int64),
            "speakers": f["extra/speaker"][()].astype(np.int64),
            "keys": np.array([k.decode() if isinstance(k, bytes) else str(k) for k in f["extra/keys"][()]]),
        }


def find(folder: Path, split: str) -> Path:
    """``shd_{split}.h5`` or ``.h5.gz`` in ``folder``."""
    for name in (f"shd_{split}.h5", f"shd_{split}.h5.gz"):
        if (folder / name).exists():
            return folder / name
    raise FileNotFoundError(f"no shd_{split}.h5 or shd_{split}.h5.gz in {folder}")


def summarize(data: dict[str, np.ndarray]) -> dict[str, float]:
    """Per-sample figures of one file."""
    counts = np.array([t.size for t in data["times"]])
    active = np.array([np.unique(u).size for u in data["units"]])
    last = np.array([t.max() if t.size else 0.0 for t in data["times"]])
    per_class = np.bincount(data["labels"], minlength=len(data["keys"]))
    return {
        "samples": counts.size, "speakers": np.unique(data["speakers"]).size,
        "spikes_mean": counts.mean(), "spikes_median": np.median(counts), "spikes_min": counts.min(),
        "spikes_max": counts.max(), "active_mean": active.mean(), "active_min": active.min(),
        "active_max": active.max(), "last_spike_mean": last.mean(), "last_spike_min": last.min(),
        "last_spike_max": last.max(), "per_class_min": per_class.min(), "per_class_max": per_class.max(),
    }


def table(rows: dict[str, dict[str, float]]) -> str:
    """Markdown table, one column per file."""
    names = list(rows)
    lines = ["| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    fmt = [("samples", "samples", "{:.0f}"), ("speakers", "speakers", "{:.0f}"),
           ("spikes per sample: mean / median", ("spikes_mean", "spikes_median"), "{:.0f} / {:.0f}"),
           ("spikes per sample: min - max", ("spikes_min", "spikes_max"), "{:.0f} - {:.0f}"),
           ("active channels per sample: mean (min - max)", ("active_mean", "active_min", "active_max"),
            "{:.0f} ({:.0f} - {:.0f})"),
           ("last spike (s): mean (min - max)", ("last_spike_mean", "last_spike_min", "last_spike_max"),
            "{:.2f} ({:.2f} - {:.2f})"),
           ("samples per class: min - max", ("per_class_min", "per_class_max"), "{:.0f} - {:.0f}")]
    for title, keys, pattern in fmt:
        keys = (keys,) if isinstance(keys, str) else keys
        lines.append(f"| {title} | " + " | ".join(pattern.format(*(rows[n][k] for k in keys)) for n in names)
                     + " |")
    return "\n".join(lines)


def raster(data: dict[str, np.ndarray], picks: list[tuple[int, int]], path: Path) -> None:
    """Save a raster plot (PNG) of the first sample of each (label, speaker) in ``picks``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 3
    rows = -(-len(picks) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), sharey=True, squeeze=False)
    for ax, (label, speaker) in zip(axes.flat, picks):
        hits = np.flatnonzero((data["labels"] == label) & (data["speakers"] == speaker))
        if hits.size == 0:
            raise ValueError(f"no sample of label {label} by speaker {speaker}")
        t, u = data["times"][hits[0]], data["units"][hits[0]]
        ax.scatter(t, u, s=0.6, c="k", marker=".", linewidths=0)
        ax.set_title(f"'{data['keys'][label]}' (label {label}), speaker {speaker}: {t.size} spikes", fontsize=9)
        ax.set_xlim(0, max(1.0, float(t.max()) + 0.05))
        ax.set_ylim(0, 700)
        ax.set_xlabel("time (s)")
    for ax in axes[:, 0]:
        ax.set_ylabel("channel (0 = base, high frequency)")
    for ax in list(axes.flat)[len(picks):]:
        ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Print the statistics table of a data folder and optionally write the raster plot."""
    p = argparse.ArgumentParser(prog="python -m spikecl.synth.stats", description=__doc__.split("\n\n")[0])
    p.add_argument("folder", type=Path, help="folder with shd_train.h5(.gz) and shd_test.h5(.gz)")
    p.add_argument("--png", type=Path, help="write a raster plot of a few training samples here")
    p.add_argument("--picks", default="7:0,7:1,17:0,0:3,18:3,19:5",
                   help="label:speaker pairs to plot (default 7:0,7:1,17:0,0:3,18:3,19:5)")
    args = p.parse_args(argv)
    data = {split: load(find(args.folder, split)) for split in ("train", "test")}
    both = {k: np.concatenate([data["train"][k], data["test"][k]]) for k in ("times", "units", "labels",
                                                                              "speakers")}
    both["keys"] = data["train"]["keys"]
    print(table({"train": summarize(data["train"]), "test": summarize(data["test"]), "all": summarize(both)}))
    if args.png:
        picks = [tuple(int(x) for x in pair.split(":")) for pair in args.picks.split(",")]
        raster(both, picks, args.png)
        print(f"raster plot: {args.png}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
