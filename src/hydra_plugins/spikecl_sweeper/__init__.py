"""The ``spikecl`` Hydra sweeper (``hydra/sweeper=spikecl``): resumable sweeps that outlive failed jobs."""
