"""Spike plots: rasters of a sample's input and hidden layers, replayed activity, firing-rate histograms
(:mod:`spikecl.plot.spikes`); ``python -m spikecl.plot RUN_DIR`` for a finished run folder."""

from spikecl.plot.spikes import (draw_heatmap, draw_raster, plot_rate_histograms, plot_replay, plot_run,
                                 plot_sample, raster_figure, sample_activity)

__all__ = ["draw_heatmap", "draw_raster", "plot_rate_histograms", "plot_replay", "plot_run", "plot_sample",
           "raster_figure", "sample_activity"]
