"""An example denoise-bench plugin.

denoise-bench finds this package through its ``denoise_bench.plugins`` entry point (see
``pyproject.toml``) and calls :func:`register`. Registration names where each object lives,
so this module stays light: the classes are imported only when a sweep uses them.
"""


def register(registry):
    """Add this package's denoiser and noise to a denoise-bench registry."""
    registry.add("denoiser", "example_box", "bench_example_plugin.box:BoxFilter",
                 "box (moving-average) filter, from the example plugin")
    registry.add("noise", "example_uniform", "bench_example_plugin.uniform:UniformNoise",
                 "additive uniform noise, from the example plugin; level = half-width in 8-bit units")
