"""A plugin whose names and error messages are HTML, to check that reports escape them.

Build the registry with ``registry_factory="hostile_denoisers:make_registry"``; tests/plugins
is on ``sys.path`` under pytest (the tests' conftest), and workers inherit it.
"""

from dataclasses import dataclass

from bench.interfaces import Denoiser

#: A denoiser that works, under a name that is a script tag.
SCRIPT_NAME = "<script>alert('name')</script>"
#: A denoiser that always fails, under a name that is an image tag with a handler.
IMG_NAME = "<img/src=x/onerror=alert('img')>"
#: What the failing one raises.
ERROR = "<script>alert('error')</script> & <b>bold</b>"


@dataclass
class RaisesMarkup(Denoiser):
    name = "raises_markup"

    def _denoise(self, noisy, sigma):
        raise RuntimeError(ERROR)


def make_registry():
    """The built-ins plus the hostile plugin."""
    from bench.catalog import register_builtins
    from bench.registry import Registry

    registry = Registry()
    register_builtins(registry)
    with registry.registering_as("<i>hostile</i>-plugin", "0"):
        registry.add("denoiser", SCRIPT_NAME, "denoisers.filters:Median", "<b>median</b> in disguise")
        registry.add("denoiser", IMG_NAME, "hostile_denoisers:RaisesMarkup", "always fails")
    return registry
