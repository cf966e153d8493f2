"""Your own audio in the SHD format: ``python -m spikecl.convert AUDIO_DIR OUT_DIR``.

A folder of recordings (wav or flac, any sample rate) goes through the cochlea chain that made SHD (the
generator's :mod:`spikecl.synth.cochlea`) into ``shd_train.h5`` and ``shd_test.h5``, which
``dataset=shd dataset.root=OUT_DIR`` reads. Labels and speakers come from the file names or a CSV
(:mod:`spikecl.convert.naming`). Needs the ``synth`` extra (scipy, numba, soundfile, lauscher).
"""
