"""``python -m spikecl.synth``: generate an SHD-format data set from synthetic speech.

Needs the optional extra (``pip install 'spikecl[synth]'``) and the espeak-ng program
(``apt-get install espeak-ng``). Example, the embedded data set::

    python -m spikecl.synth --out src/spikecl/data/embedded --speakers 12 --repetitions 4 --gzip --jobs 2
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m spikecl.synth", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output folder for shd_train.h5 and shd_test.h5")
    p.add_argument("--speakers", type=int, default=12, help="number of synthetic speakers (default 12)")
    p.add_argument("--repetitions", type=int, default=4, help="utterances per speaker and word (default 4)")
    p.add_argument("--test-speakers", type=int, default=2,
                   help="speakers that appear only in the test file (default 2, like SHD)")
    p.add_argument("--test-fraction", type=float, default=0.07,
                   help="fraction of the other speakers' samples put in the test file (default 0.07)")
    p.add_argument("--seed", type=int, default=0, help="seed of everything random (default 0)")
    p.add_argument("--channels", type=int, default=700, help="cochlea channels (default 700, like SHD)")
    p.add_argument("--max-duration", type=float, default=1.4,
                   help="longest utterance in seconds; the cochlea's FFT length (default 1.4)")
    p.add_argument("--pitch-jitter", type=float, default=4.0,
                   help="per-utterance pitch s.d. on espeak-ng's 0-99 scale (default 4)")
    p.add_argument("--speed-jitter", type=float, default=0.06,
                   help="per-utterance relative speed s.d. (default 0.06)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--gzip", action="store_true", help="write shd_train.h5.gz and shd_test.h5.gz")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, generate, print a JSON summary. Returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        from .generator import SynthConfig, generate
        from .speech import Jitter, espeak_binary
    except ImportError as err:
        print(f"error: {err}. The generator needs the optional extra: pip install 'spikecl[synth]'",
              file=sys.stderr)
        return 2
    try:
        espeak_binary()
        cfg = SynthConfig(speakers=args.speakers, repetitions=args.repetitions, test_speakers=args.test_speakers,
                          test_fraction=args.test_fraction, seed=args.seed, max_duration=args.max_duration,
                          jitter=replace(Jitter(), pitch_sd=args.pitch_jitter, speed_sd=args.speed_jitter))
        cfg = replace(cfg, cochlea=replace(cfg.cochlea, channels=args.channels))
        summary = generate(cfg, args.out, jobs=args.jobs, compress=args.gzip, progress=not args.no_progress)
    except (ValueError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
