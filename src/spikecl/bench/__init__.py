"""Benchmark of spikecl against a straightforward re-statement of the paper's training loop.

``python -m spikecl.bench`` measures, side by side in one process: the pretraining step, the latent-replay
step at several depths, inference, and reading/binning SHD-format files (cold and cached); it prints a
table and writes ``bench.json`` (see BENCHMARKS.md). The reference is
:mod:`spikecl.models.reference` (also the oracle of the model tests), :mod:`spikecl.bench.suite` the cases,
:mod:`spikecl.bench.measure` timing and peak memory, :mod:`spikecl.bench.shd_files` the generated
SHD-format files, :mod:`spikecl.bench.table` the printed table.
"""
