"""``python -m spikecl.convert AUDIO_DIR OUT_DIR``: convert a folder of audio files to SHD-format files.

Example, the Free Spoken Digit Dataset (files named ``<digit>_<speaker>_<take>.wav``)::

    python -m spikecl.convert free-spoken-digit-dataset/recordings data/fsdd --test-takes 0-4 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import sys


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m spikecl.convert", description=__doc__.split("\n\n")[0])
    p.add_argument("audio_dir", metavar="AUDIO_DIR", help="folder of .wav/.flac files (searched recursively)")
    p.add_argument("out_dir", metavar="OUT_DIR", help="output folder for shd_train.h5 and shd_test.h5")
    p.add_argument("--pattern", default="{label}_{speaker}_{take}",
                   help="file-name pattern (without the suffix) naming {label}, {speaker} and optionally {take} "
                        "(default: {label}_{speaker}_{take}, as FSDD)")
    p.add_argument("--labels", metavar="CSV", help="CSV with columns file,label,speaker[,split] instead of --pattern")
    split = p.add_mutually_exclusive_group()
    split.add_argument("--test-speakers", metavar="A,B", help="speakers whose files all go to the test file")
    split.add_argument("--test-takes", metavar="RANGES", help="takes that go to the test file, e.g. 0-4 or 0,3,7-9")
    split.add_argument("--test-fraction", type=float, default=0.2,
                       help="otherwise: this random fraction of the files goes to the test file (default 0.2)")
    p.add_argument("--class-names", metavar="A,B,...", help="names of classes 0, 1, ... (stored in extra/keys)")
    p.add_argument("--channels", type=int, default=700, help="cochlea channels (default 700, like SHD)")
    p.add_argument("--seed", type=int, default=0, help="seed of the fibre noise and the random split (default 0)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _argument_errors(args: argparse.Namespace) -> list[str]:
    """What is wrong with the numeric arguments, checked before any file is read or converted."""
    errors = []
    if not 0 < args.test_fraction < 1:
        errors.append(f"--test-fraction {args.test_fraction:g} is not valid; give a fraction between 0 and 1 "
                      "(exclusive), e.g. --test-fraction 0.2")
    if args.channels < 1:
        errors.append(f"--channels {args.channels} is not valid; give at least 1 (SHD has 700)")
    if args.jobs < 1:
        errors.append(f"--jobs {args.jobs} is not valid; give at least 1")
    return errors


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, convert, print a JSON summary. Returns the exit status."""
    args = _parser().parse_args(argv)
    errors = _argument_errors(args)
    if errors:
        print(f"error: {errors[0]}", file=sys.stderr)
        return 2
    try:
        from dataclasses import replace
        from pathlib import Path

        from spikecl.convert.naming import catalogue, entries_from_csv, entries_from_names
        from spikecl.convert.pipeline import convert_folder
        from spikecl.synth.cochlea import CochleaParams
    except ImportError as err:
        print(f"error: {err}. The converter needs the optional extra: pip install 'spikecl[synth]'", file=sys.stderr)
        return 2
    from spikecl.errors import ConfigError

    source = Path(args.audio_dir)
    try:
        if args.labels:
            entries, naming = entries_from_csv(source, Path(args.labels)), f"csv:{Path(args.labels).resolve()}"
        else:
            entries, naming = entries_from_names(source, args.pattern), f"pattern:{args.pattern}"
        speakers = [s.strip() for s in args.test_speakers.split(",")] if args.test_speakers else None
        names = [s.strip() for s in args.class_names.split(",")] if args.class_names else None
        cat = catalogue(entries, speakers, args.test_takes, args.test_fraction, args.seed, names)
        rule = ("csv split column" if any(e.split for e in entries) else
                f"test speakers {args.test_speakers}" if speakers else
                f"test takes {args.test_takes}" if args.test_takes else
                f"random test fraction {args.test_fraction}")
        params = replace(CochleaParams(), channels=args.channels)
        summary = convert_folder(source, args.out_dir, cat, naming, rule, params, args.seed, args.jobs,
                                 progress=not args.no_progress)
    except (ConfigError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

