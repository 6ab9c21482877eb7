"""Noise generators. Each module holds one noise model implementing :class:`bench.interfaces.Noise`.

The registry (``bench/catalog.py``) names them; import a class from its module directly.
"""
