"""``python -m spikecl.synth.compare``: the fast cochlea against lauscher's reference chain, on the same audio.

For a few utterances it prints total spikes, active channels, the correlation of per-channel spike counts
and of the spike-count time course (10 ms bins) between the reference and the fast chain, and as the noise
floor the same correlations between two fast runs with different fibre-noise seeds (both chains are
stochastic, so even a perfect re-implementation does not reach 1). The reference is slow: minutes and
several GB of memory per utterance, so keep to two or three short words.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from .cochlea import AUDIO_RATE, Cochlea, CochleaParams
from .generator import sample_seeds
from .speech import KEYS, Jitter, make_speakers, utterance


def reference_spikes(audio: np.ndarray, channels: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """lauscher 1.0.1's own chain (``Wave2Spike``, the SHD conversion), on one process."""
    from lauscher.audiowaves import MonoAudioWave
    from lauscher.helpers import CommandLineArguments
    from lauscher.transformations.wave2spike import Wave2Spike

    CommandLineArguments().num_concurrent_jobs = 1
    # lauscher samples its fibres from NumPy's global generator in this process
    np.random.seed(seed)
    train = MonoAudioWave(np.array(audio, dtype=np.float64), AUDIO_RATE).transform(Wave2Spike(channels))
    return np.asarray(train.spike_times), np.asarray(train.spike_labels).astype(np.int64)


def _profiles(times: np.ndarray, units: np.ndarray, channels: int, duration: float) -> tuple[np.ndarray, ...]:
    per_channel = np.bincount(units.astype(np.int64), minlength=channels)
    per_bin = np.histogram(times, bins=np.arange(0.0, duration + 0.01, 0.01))[0]
    return per_channel, per_bin


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def compare_one(audio: np.ndarray, fast: Cochlea, seed: int) -> dict[str, float]:
    """Metrics of one utterance: reference vs fast, and fast vs fast with another seed."""
    duration = audio.size / AUDIO_RATE
    channels = fast.params.channels
    start = time.perf_counter()
    ref = reference_spikes(audio, channels, seed)
    ref_s = time.perf_counter() - start
    start = time.perf_counter()
    fast_a = fast.convert(audio, seed)
    fast_s = time.perf_counter() - start
    fast_b = fast.convert(audio, seed + 1)
    (ref_c, ref_t), (a_c, a_t), (b_c, b_t) = (_profiles(t, u, channels, duration) for t, u in (ref, fast_a, fast_b))
    return {
        "duration_s": duration,
        "ref_spikes": int(ref_c.sum()), "fast_spikes": int(a_c.sum()),
        "ref_active": int((ref_c > 0).sum()), "fast_active": int((a_c > 0).sum()),
        "r_channel_ref_fast": _corr(ref_c, a_c), "r_channel_fast_fast": _corr(a_c, b_c),
        "r_time_ref_fast": _corr(ref_t, a_t), "r_time_fast_fast": _corr(a_t, b_t),
        "ref_seconds": ref_s, "fast_seconds": fast_s,
    }


def _table(rows: list[dict[str, object]]) -> str:
    head = ("| word | audio (s) | spikes ref / fast | active channels ref / fast | r channel counts ref-fast "
            "(fast-fast) | r 10 ms counts ref-fast (fast-fast) | time ref / fast (s) |")
    lines = [head, "|" + "---|" * 7]
    for r in rows:
        lines.append(
            f"| {r['word']} | {r['duration_s']:.2f} | {r['ref_spikes']} / {r['fast_spikes']} | "
            f"{r['ref_active']} / {r['fast_active']} | {r['r_channel_ref_fast']:.3f} ({r['r_channel_fast_fast']:.3f}) | "
            f"{r['r_time_ref_fast']:.3f} ({r['r_time_fast_fast']:.3f}) | {r['ref_seconds']:.0f} / {r['fast_seconds']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Compare on the chosen words (labels) of one synthetic speaker; print a Markdown table and JSON."""
    p = argparse.ArgumentParser(prog="python -m spikecl.synth.compare", description=__doc__.split("\n\n")[0])
    p.add_argument("--labels", default="2,18,4", help="comma-separated labels to say (default 2,18,4)")
    p.add_argument("--speaker", type=int, default=1, help="speaker id of the seed-0 speaker set (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed for speakers, jitter and fibres (default 0)")
    p.add_argument("--channels", type=int, default=700, help="cochlea channels (default 700)")
    args = p.parse_args(argv)
    labels = [int(x) for x in args.labels.split(",")]
    speaker = make_speakers(args.speaker + 1, np.random.default_rng(np.random.SeedSequence([args.seed, 0])))[-1]
    audios = [utterance(speaker, label, Jitter(), sample_seeds(args.seed, speaker.id, label, 0)[0])
              for label in labels]
    fast = Cochlea(CochleaParams(channels=args.channels), max(a.size for a in audios))
    fast.convert(audios[0], 0)  # compile (or load) the numba loop outside the timings
    rows = []
    for label, audio in zip(labels, audios):
        rows.append({"word": KEYS[label], "voice": speaker.voice(label), **compare_one(audio, fast, args.seed)})
        print(f"done {KEYS[label]}", file=sys.stderr, flush=True)
    print(_table(rows))
    print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
