"""A metric plugin for the report tests: ``toy``, the root mean square error (lower is better).

``register`` is the entry point a fake installed distribution names (see
``fake_metric_plugin`` in ``tests/reports/test_reports.py``). For a denoised output scored with data
range 1, ``toy = 10 ** (-psnr / 20)``, so a results table can be given ``toy`` columns from
its ``psnr`` columns, exactly as a run that scored ``toy`` would hold them.
"""

from __future__ import annotations

import numpy as np

from bench.metrics import Metric

NAME = "toy"


class RootMeanSquareError(Metric):
    """Root mean square error of ``estimate`` against ``reference``, data range 1."""

    name = NAME
    unit = ""
    higher_is_better = False
    margin = 0.01
    decimals = 4

    def score(self, reference, estimate):
        return float(np.sqrt(np.mean((reference - estimate) ** 2)))


def register(registry):
    registry.add("metric", NAME, "toy_metric_plugin:RootMeanSquareError",
                 "root mean square error, data range 1 (a test plugin; lower is better)")


def toy_from_psnr(psnr):
    """The ``toy`` score (RMSE) equivalent to a PSNR in dB, for data range 1."""
    return 10.0 ** (-np.asarray(psnr, dtype=float) / 20.0)
