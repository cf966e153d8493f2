"""``python -m spikecl``: the Hydra application (see :mod:`spikecl.cli`)."""

from spikecl.cli import main

if __name__ == "__main__":
    main()
