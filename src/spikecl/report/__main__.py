"""``python -m spikecl.report DIR [DIR ...] [--out OUT]``: write summary.csv, report.md and plots/."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from spikecl.report import write_report


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (1 when no run folder was found)."""
    parser = argparse.ArgumentParser(
        prog="python -m spikecl.report",
        description="Aggregate spikecl run folders (single runs or multirun trees) into summary.csv, "
        "report.md and plots/. Folders without a completed summary.json are listed as incomplete.",
    )
    parser.add_argument("dirs", nargs="+", metavar="DIR", help="run folders or sweep folders, searched at any depth")
    parser.add_argument("--out", metavar="OUT", help="where to write the report (default: the first DIR)")
    args = parser.parse_args(argv)
    try:
        result = write_report(args.dirs, args.out)
    except FileNotFoundError as err:  # a DIR that does not exist
        parser.error(str(err))
    except OSError as err:  # the report's folder refuses the files: read-only, a file in its place, full disk
        where = args.out or args.dirs[0]
        print(f"error: cannot write the report into {where} ({err.strerror or err}: {err.filename or where}); "
              "give a writable folder with --out OUT", file=sys.stderr)
        return 2
    runs = result.completed + len(result.incomplete)
    print(f"{runs} run folders ({result.completed} completed, {len(result.incomplete)} incomplete)")
    print(f"wrote {result.summary_csv}, {result.report_md} and {len(result.plots)} figures in {result.out}")
    for path in result.incomplete:
        print(f"incomplete: {path}")
    if runs == 0:
        print(f"error: no run folders (with .hydra/config.yaml) below {', '.join(args.dirs)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
