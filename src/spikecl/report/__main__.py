"""``python -m spikecl.report DIR [DIR ...] [--out OUT]``: write summary.csv, report.md and plots/."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from spikecl.report import write_report


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (1 when no run folder was found, 2 for bad input)."""
    parser = argparse.ArgumentParser(
        prog="python -m spikecl.report",
        description="Aggregate spikecl run folders (single runs or multirun trees) into summary.csv, "
        "report.md and plots/. Folders without a completed summary.json are listed as incomplete.",
    )
    parser.add_argument("dirs", nargs="+", metavar="DIR", help="run folders or sweep folders, searched at any depth")
    parser.add_argument("--out", metavar="OUT", help="where to write the report (default: the first DIR)")
    parser.add_argument("--data", choices=("test", "val"), default="test",
                        help="the data the figures show: test (default) or val (the validation parts)")
    args = parser.parse_args(argv)
    try:
        result = write_report(args.dirs, args.out, args.data)
    except FileNotFoundError as err:  # a DIR that does not exist
        parser.error(str(err))
    except OSError as err:  # the report's folder refuses the files: read-only, a file in its place, full disk
        where = args.out or args.dirs[0]
        print(f"error: cannot write the report into {where} ({err.strerror or err}: {err.filename or where}); "
              "give a writable folder with --out OUT", file=sys.stderr)
        return 2
    if result.report_md is None:
        print(f"error: no run folders (with .hydra/config.yaml) below {', '.join(args.dirs)}; nothing written. "
              "Give a run folder or a sweep folder (outputs/multirun/<sweep>)", file=sys.stderr)
        return 1
    print(f"{result.completed + len(result.incomplete)} run folders ({result.completed} completed, "
          f"{len(result.incomplete)} incomplete or flagged)")
    print(f"wrote {result.summary_csv}, {result.report_md} and {len(result.plots)} figures in {result.out}")
    for path in result.incomplete:
        print(f"incomplete or flagged: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
