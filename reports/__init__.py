"""Turn results into comparisons: pandas tables, plots, HTML and Markdown reports.

The public API, for scripts and notebooks (every table is a plain pandas DataFrame)::

    from reports import load_run, summarise_ci, winners, rank, compare, write_report

    run = load_run("runs/20260101-120000")   # results, manifest and stored crops
    summary = summarise_ci(run.results)      # every metric's mean with 95% intervals over images
    winners(summary, results=run.results)    # best by each metric, who ties with it, fastest near
    rank(summary)                            # mean rank of each method
    paired_differences(run.results, baseline="bm3d")  # each method against BM3D, image by image
    compare(before.results, run.results)     # paired differences between two runs
    write_report(run.run_dir, baseline="bm3d")  # report.html + report.md in the run directory

Modules: :mod:`reports.load` (reading a run), :mod:`reports.stats` (summaries),
:mod:`reports.paired` (paired differences, Wilcoxon tests, Holm's correction),
:mod:`reports.compare` (run against run), :mod:`reports.plots` (matplotlib figures),
:mod:`reports.grids` (crop grids), :mod:`reports.build` (the report's tables, computed once, and
writing a report), :mod:`reports.context` (what both pages show),
:mod:`reports.html` (the page, from ``templates/report.html.j2``) and :mod:`reports.markdown`
(renderers), :mod:`reports.tables` (terminal tables, from the same summary).

No metric is named in this package: every table, plot and page loops over the metric columns
of the run (:func:`bench.metrics.metric_columns`; PSNR and SSIM by default, plus any metric a
plugin registers), the first one being the primary metric that ranks the methods.
"""

from reports.build import write_report
from reports.compare import compare, pair_cells, regressions
from reports.load import Run, load_run
from reports.paired import paired_differences
from reports.stats import (failures, image_means, method_label, method_labels, noisy_baseline,
                           pareto_front, rank, run_metrics, speed_quality, summarise_ci,
                           summary_metrics, winners)

__all__ = [
    "Run", "compare", "failures", "image_means", "load_run", "method_label", "method_labels",
    "noisy_baseline", "pair_cells", "paired_differences", "pareto_front", "rank", "regressions",
    "run_metrics", "speed_quality", "summarise_ci", "summary_metrics", "winners", "write_report",
]
