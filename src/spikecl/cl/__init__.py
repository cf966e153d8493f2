"""Continual learning: replay buffers with time compression, CL strategies and their metrics.

- :mod:`spikecl.cl.compression`: codecs that compress replayed activity in time and expand it for replay.
- :mod:`spikecl.cl.buffer`: the replay buffer (bit-packed / narrow-integer storage, memory accounting) and
  the choice of which past samples it keeps.
- :mod:`spikecl.cl.strategies`: naive fine-tuning, rehearsal and latent replay.
- :mod:`spikecl.cl.metrics`: accuracy matrices, backward transfer and forgetting.
"""
