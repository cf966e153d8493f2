"""Realistic SHD-format data from synthetic speech (optional extra ``synth``).

espeak-ng speaks the 20 SHD words in many synthetic voices (:mod:`.speech`); a fast re-implementation of
SHD's cochlea chain turns the 48 kHz audio into 700-channel spike trains (:mod:`.cochlea`); the generator
plans speakers and splits and writes ``shd_train.h5`` / ``shd_test.h5`` (:mod:`.generator`,
:mod:`.shd_file`); :mod:`.compare` checks the fast chain against lauscher's reference chain.
Command line: ``python -m spikecl.synth --help``. The submodules import numba, scipy and lauscher, so this
package imports none of them itself.
"""
