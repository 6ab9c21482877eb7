"""Denoisers, one module per family, each class implementing :class:`bench.interfaces.Denoiser`.

Classical methods: :mod:`denoisers.filters` (median, Gaussian, bilateral),
:mod:`denoisers.variational` (total variation), :mod:`denoisers.nonlocal_means`,
:mod:`denoisers.wavelet` and :mod:`denoisers.block_matching` (BM3D). Learned methods
(PyTorch models with shipped weights) live in their own modules beside these.
The registry (``bench/catalog.py``) names them.
"""
