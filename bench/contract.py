"""Contract checks: what every denoiser, noise and metric must do, built-in or plugin.

``bench check-plugin NAME`` runs these checks against a registered name and prints one row
per check; the built-ins pass them all (``tests/bench/test_contract.py``), so a plugin that passes
them behaves in a sweep as the built-ins do. Every check runs on small fixed images — a 64x64
crop of scikit-image's ``camera`` (grayscale) and of its ``astronaut`` (colour), float32 in
[0, 1] — and on noise drawn from ``numpy.random.default_rng`` with fixed seeds, so a result
is the same on every run.

Denoisers (created by the registry, set up on ``"cpu"``; "noisy" is the crop plus Gaussian
noise of sigma 25 in 8-bit units, clipped to [0, 1], and the oracle sigma is 25 / 255):

``set up``
    Created with its default parameters and set up on the CPU.
``output shape``
    A numpy array of the input's shape.
``floating dtype``
    A floating-point array (an integer array, such as 8-bit 0-255 values, fails, naming its
    dtype: the convention is floats in [0, 1]).
``finite values``
    No NaN or infinity.
``input outside [0, 1]``
    Gaussian noise of sigma 50, unclipped (values below 0 and above 1) gives finite output.
``grayscale and colour``
    Both (H, W) and (H, W, 3) inputs give an output of their shape. A denoiser that handles
    only one of them declares it with a class attribute ``channels``, e.g. ``(1,)`` for
    grayscale only (read with ``getattr(cls, "channels", (1, 3))``); it must then refuse the
    other with the suite's :class:`~bench.errors.InvalidParameterError`, and it is checked
    on the images it declares.
``deterministic``
    Two calls on the same input give bit-identical outputs; a class that declares
    ``deterministic = False`` may differ by up to :data:`NONDETERMINISTIC_TOLERANCE`.
``input unchanged``
    No call writes into the array it was given. A class that declares ``keeps_input = True``
    (the runner then hands it the noisy image it keeps for the next cells, without a copy)
    and writes is told that its declaration is wrong.
``oracle and blind``
    Called with the sigma (oracle) and with ``None`` (blind), it gives finite output.

A denoiser with the tensor path (``supports_tensor()`` True; the runner takes it on cells off
the CPU) is also called through :meth:`~bench.interfaces.Denoiser.denoise_tensor`, with torch
on the CPU, on the array calls' inputs (oracle, blind, outside [0, 1] and the other image shape
it declares), each a CPU tensor holding its own copy of the image. For the others these rows
are absent: their cells take the array path everywhere.

``tensor output``
    The calls with a sigma (oracle, outside [0, 1], the other image shape) return what the
    runner accepts on the tensor path
    (:func:`bench.run.worker.check_output_tensor`, whose messages the row repeats): a
    floating-point torch tensor of the input's shape on the input's device, with finite values.
``tensor blind``
    The same for the call with ``sigma=None``.
``tensor agrees with array``
    Each tensor output is within :data:`TENSOR_TOLERANCE` (absolute, [0, 1] units) of the
    array path of the same code on the same input and sigma, so a cell reads the same on either
    path. For most classes that is ``denoise`` (the learned models: bit-identical). A class
    whose array path on the CPU is separate CPU code, its tensor path a torch port of it (the
    classical methods of :mod:`denoisers.on_device`), says so by providing
    ``denoise_tensor_on(device, array, sigma)``, the array path it runs when set up on a GPU;
    the tensor path is compared with that on ``"cpu"`` (oracle and blind calls), and with the
    CPU code (every call) within :data:`PORT_TOLERANCE` only: one 8-bit level, since the two
    implementations round differently (documented per method in
    :mod:`denoisers.torch_classical`; a cell records its device).
``tensor input unchanged``
    No call writes into the tensor it was given (the runner hands a class that declares
    ``keeps_input = True`` the tensor it keeps on the device).

``within timeout``
    Every call, tensor calls included, finishes within the cell timeout; the row reports the
    seconds of a warmed-up array call and megapixels per second (no threshold).

Noises (default parameters; levels outside the declared range are never used):

``level range``
    ``level.low <= level.default <= level.high`` and every default level within; levels
    below ``low`` and above ``high`` are refused with
    :class:`~bench.errors.InvalidParameterError`.
``seeding``
    At the largest default level, the same seed gives the same noisy image, bit for bit;
    another seed another image.
``output shape and dtype``
    At every default level, grayscale and colour: a float32 image of the clean image's
    shape, with finite values.
``sigma``
    The reported equivalent sigma is a finite, non-negative number.

Metrics (scored on float64 arrays, as :class:`bench.metrics.Metric` receives them):

``declared attributes``
    ``name`` (the registered one), ``unit``, ``higher_is_better``, ``margin`` (finite, not
    negative) and ``needs_reference``, of the right types.
``grayscale and colour``
    A pair of (H, W) images and a pair of (H, W, 3) images each score as one real number.
``identity is best``
    ``metric(x, x)`` scores at least as well as ``metric(x, noisy)`` in the metric's
    direction (``inf`` counts: PSNR of identical images).
``finite on a noisy pair``
    A noisy estimate scores finite, clipped to [0, 1] (a denoised output) or not (a noisy
    input, scored unclipped).
"""

from __future__ import annotations

import math
import numbers
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from bench.errors import BenchError, InvalidParameterError, MissingExtraError, UnknownNameError

#: The registry kinds that have contract checks (datasets have none).
CHECKED_KINDS = ("denoiser", "noise", "metric")
#: Exit status of ``bench check-plugin`` when a check failed.
EXIT_CHECK_FAILED = 1
#: Seconds one denoise call may take (the runner's default cell timeout).
DEFAULT_TIMEOUT = 600.0
#: Largest difference between two calls allowed to a class with ``deterministic = False``.
NONDETERMINISTIC_TOLERANCE = 1e-6
#: Noise levels of the denoiser checks, 8-bit units.
SIGMA, SIGMA_OUTSIDE = 25.0, 50.0
#: Largest absolute difference ([0, 1] units) between the tensor path and the array path of the
#: same code: a 400th of an 8-bit level, room for float32 sums taken in another order.
TENSOR_TOLERANCE = 1e-5
#: Largest absolute difference between a torch port's tensor path and the CPU code it ports
#: (classes with ``denoise_tensor_on``): one 8-bit level. The built-ins' worst is 1e-3 (TV
#: stopping one iteration apart); a wrong sigma unit or channel order moves far more.
PORT_TOLERANCE = 1 / 255


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check.

    Attributes
    ----------
    check : str
        The check's name, e.g. ``"floating dtype"``.
    passed : bool
    detail : str
        What was seen: the measurement on a pass, the reason on a failure.
    """

    check: str
    passed: bool
    detail: str = ""


@dataclass
class ContractReport:
    """The checks of one registered name as one kind.

    Attributes
    ----------
    kind : {"denoiser", "noise", "metric"}
    name : str
    origin : str
        ``"built-in"`` or ``"plugin <distribution> <version>"``.
    results : list of CheckResult
    """

    kind: str
    name: str
    origin: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every check passed."""
        return all(result.passed for result in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        """The checks that failed, in order."""
        return [result for result in self.results if not result.passed]


def check(name: str, registry=None, *, kind: str | None = None,
          timeout: float = DEFAULT_TIMEOUT) -> list[ContractReport]:
    """Run the contract checks of ``name`` as every kind it is registered as.

    Parameters
    ----------
    name : str
        A registered denoiser, noise or metric.
    registry : bench.registry.Registry, optional
        Where to look ``name`` up; the default registry (built-ins and plugins) when None.
    kind : {"denoiser", "noise", "metric"}, optional
        Check ``name`` as this kind only.
    timeout : float
        Seconds one denoise call may take.

    Returns
    -------
    list of ContractReport
        One per kind, in the order of :data:`CHECKED_KINDS`.

    Raises
    ------
    UnknownNameError
        When ``name`` is not registered (as ``kind``).
    MissingExtraError
        When an optional dependency it needs is not installed.
    InvalidParameterError
        When ``name`` is only a dataset, which has no contract checks.
    """
    registry = _registry(registry)
    return [check_kind(k, name, registry, timeout=timeout)
            for k in kinds_to_check(name, registry, kind=kind)]


def check_kind(kind: str, name: str, registry=None, *,
               timeout: float = DEFAULT_TIMEOUT) -> ContractReport:
    """Run the checks of one kind against ``name`` (see :func:`check` for the parameters)."""
    if kind == "denoiser":
        return check_denoiser(name, registry, timeout=timeout)
    if kind == "noise":
        return check_noise(name, registry)
    if kind == "metric":
        return check_metric(name, registry)
    raise InvalidParameterError(f"no contract checks for kind '{kind}'; "
                                f"use one of {', '.join(CHECKED_KINDS)}")


def kinds_to_check(name: str, registry=None, *, kind: str | None = None) -> list[str]:
    """The kinds ``name`` is registered as and has checks for, each found installed.

    Raises the errors listed in :func:`check`, before any check runs.
    """
    registry = _registry(registry)
    if kind is not None:
        if kind not in CHECKED_KINDS:
            raise InvalidParameterError(f"no contract checks for kind '{kind}'; "
                                        f"use one of {', '.join(CHECKED_KINDS)}")
        kinds = [kind]
        registry.get(kind, name)  # an unknown name is an error here, with suggestions
    else:
        kinds = [k for k in CHECKED_KINDS if name in registry.names(k)]
    if not kinds:
        if name in registry.names("dataset"):
            raise InvalidParameterError(f"'{name}' is a dataset; contract checks cover "
                                        f"denoisers, noises and metrics")
        known = [n for k in CHECKED_KINDS for n in registry.names(k)]
        raise UnknownNameError("name", name, known)
    for k in kinds:
        reason = registry.get(k, name).unavailable_reason()
        if reason:
            raise MissingExtraError(f"{k} '{name}' {reason}")
    return kinds


def check_denoiser(name: str, registry=None, *,
                   timeout: float = DEFAULT_TIMEOUT) -> ContractReport:
    """Run the denoiser checks (see the module docstring) against denoiser ``name``."""
    registry = _registry(registry)
    report = ContractReport("denoiser", name, registry.get("denoiser", name).origin)
    add = report.results.append
    outcome = _Guard(timeout).call(lambda: _create_denoiser(registry, name))
    if isinstance(outcome.error, MissingExtraError):
        raise outcome.error
    if not outcome.ok:
        add(CheckResult("set up", False, outcome.describe()))
        return report
    denoiser = outcome.value
    cls = type(denoiser)
    add(CheckResult("set up", True, f"{cls.__module__}.{cls.__qualname__} on cpu"))

    declared = tuple(getattr(cls, "channels", (1, 3)))
    gray, colour = sample_images()
    main_image, other_image = (gray, colour) if 1 in declared else (colour, gray)
    noisy = _noisy(main_image, SIGMA, seed=0, clip=True)
    outside = _noisy(main_image, SIGMA_OUTSIDE, seed=2, clip=False)
    other = _noisy(other_image, SIGMA, seed=1, clip=True)

    guard = _Guard(timeout)

    def run(image, sigma):
        return guard.denoise(denoiser, image, sigma)

    first, second = run(noisy, SIGMA / 255), run(noisy, SIGMA / 255)
    calls = {"oracle": first, "repeat": second,
             "outside [0, 1]": run(outside, SIGMA_OUTSIDE / 255),
             "blind": run(noisy, None), _shape_label(other): run(other, SIGMA / 255)}

    add(_protected(_output_shape, first, noisy.shape))
    add(_protected(_floating_dtype, first))
    add(_protected(_finite, first))
    add(_protected(_accepts_outside, calls["outside [0, 1]"], outside))
    add(_protected(_gray_and_colour, first, calls[_shape_label(other)], noisy.shape,
                   other.shape, declared))
    add(_protected(_deterministic, first, second, getattr(cls, "deterministic", True)))
    keeps_input = bool(getattr(cls, "keeps_input", False))
    add(_protected(_input_unchanged, calls, keeps_input))
    add(_protected(_oracle_and_blind, first, calls["blind"]))

    timed_calls = dict(calls)
    if _has_tensor_path(denoiser, add):
        inputs = {"oracle": (noisy, SIGMA / 255), "blind": (noisy, None),
                  "outside [0, 1]": (outside, SIGMA_OUTSIDE / 255)}
        if (1 if other.ndim == 2 else other.shape[-1]) in declared:
            inputs[_shape_label(other)] = (other, SIGMA / 255)
        arrays = {label: first if label == "oracle" else calls[label] for label in inputs}
        timed_calls.update(_check_tensor_path(denoiser, guard, add, inputs, arrays, keeps_input))
    add(_protected(_within_timeout, timed_calls, second, noisy.shape, timeout))
    return report


def _check_tensor_path(denoiser, guard: _Guard, add, inputs: dict, arrays: dict,
                       keeps_input: bool) -> dict[str, _Outcome]:
    """The tensor rows (see the module docstring): ``inputs`` maps a call's label to its
    (image, sigma), ``arrays`` to the array call on it. Returns the calls made, by label."""
    tensors = {label: guard.denoise_tensor(denoiser, image, sigma)
               for label, (image, sigma) in inputs.items()}
    made = {f"tensor {label}": outcome for label, outcome in tensors.items()}
    port = getattr(denoiser, "denoise_tensor_on", None)
    if callable(port):
        # The port's array path is the tensor path's code between two copies: the oracle
        # and blind calls (blind estimates sigma its own way) show where the two differ.
        same_code = {label: guard.call(_port_call(port, *inputs[label]))
                     for label in ("oracle", "blind")}
        cpu_code = arrays
        made.update({f"denoise_tensor_on {label}": outcome
                     for label, outcome in same_code.items()})
    else:
        same_code, cpu_code = arrays, None
    shapes = {label: image.shape for label, (image, _) in inputs.items()}
    add(_protected(_tensor_output, {label: outcome for label, outcome in tensors.items()
                                    if label != "blind"}, shapes))
    add(_protected(_tensor_blind, tensors["blind"], shapes["blind"]))
    add(_protected(_tensor_agrees, tensors, shapes, same_code, cpu_code))
    add(_protected(_tensor_input_unchanged, tensors, keeps_input))
    return made


def _has_tensor_path(denoiser, add) -> bool:
    """``denoiser.supports_tensor()``; when it raises, False after recording a failed
    "tensor path" check."""
    try:
        return bool(denoiser.supports_tensor())
    except Exception as error:
        add(CheckResult("tensor path", False, f"supports_tensor() raised {_one_line(error)}"))
        return False


def _port_call(port, image: np.ndarray, sigma: float | None) -> Callable[[], object]:
    """A call of ``denoise_tensor_on("cpu", ...)`` on a private copy of ``image``."""
    return lambda: port("cpu", image.copy(), sigma)


def _create(report: ContractReport, create, name: str):
    """``create(name)``, or None after recording a failed "created" check (a missing extra
    is raised: it is the user's install, not the plugin's contract)."""
    try:
        return create(name)
    except MissingExtraError:
        raise
    except Exception as error:
        report.results.append(CheckResult("created", False, _one_line(error)))
        return None


def check_noise(name: str, registry=None) -> ContractReport:
    """Run the noise checks (see the module docstring) against noise ``name``."""
    registry = _registry(registry)
    report = ContractReport("noise", name, registry.get("noise", name).origin)
    noise = _create(report, registry.create_noise, name)
    if noise is None:
        return report
    for step in (_level_range, _seeding, _noise_output, _noise_sigma):
        report.results.append(_protected(step, noise))
    return report


def check_metric(name: str, registry=None) -> ContractReport:
    """Run the metric checks (see the module docstring) against metric ``name``."""
    registry = _registry(registry)
    report = ContractReport("metric", name, registry.get("metric", name).origin)
    metric = _create(report, registry.create_metric, name)
    if metric is None:
        return report
    report.results.append(_protected(_declared_attributes, type(metric), name))
    with np.errstate(divide="ignore"):  # PSNR of identical images divides by zero: inf
        scores = {label: {case: _score(metric, *pair) for case, pair in cases.items()}
                  for label, cases in _metric_pairs().items()}
    report.results.append(_metric_shapes(scores))
    report.results.append(_protected(_identity_is_best, type(metric), scores))
    report.results.append(_metric_finite(scores))
    return report


@lru_cache(maxsize=1)
def sample_images() -> tuple[np.ndarray, np.ndarray]:
    """The checks' clean images: 64x64 crops of ``camera`` and ``astronaut``, read-only.

    Returns
    -------
    gray, colour : numpy.ndarray
        float32 in [0, 1], shaped (64, 64) and (64, 64, 3).
    """
    import skimage.data

    gray = (skimage.data.camera()[200:264, 200:264] / 255).astype(np.float32)
    colour = (skimage.data.astronaut()[100:164, 180:244] / 255).astype(np.float32)
    for image in (gray, colour):
        image.setflags(write=False)
    return gray, colour


# --- helpers ----------------------------------------------------------------------------


def _registry(registry):
    if registry is not None:
        return registry
    from bench.registry import default_registry

    return default_registry()


def _create_denoiser(registry, name: str):
    denoiser = registry.create_denoiser(name)
    denoiser.setup("cpu")
    return denoiser


def _noisy(clean: np.ndarray, sigma8: float, *, seed: int, clip: bool) -> np.ndarray:
    noisy = clean + np.random.default_rng(seed).standard_normal(clean.shape) * (sigma8 / 255)
    return (np.clip(noisy, 0.0, 1.0) if clip else noisy).astype(np.float32)


def _shape_label(image: np.ndarray) -> str:
    return "colour" if image.ndim == 3 else "grayscale"


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _protected(step: Callable[..., CheckResult], *args) -> CheckResult:
    """Run one check; an exception it did not expect fails the check, named."""
    try:
        return step(*args)
    except Exception as error:
        return CheckResult(getattr(step, "check_name", step.__name__), False,
                           f"raised {_one_line(error)}")


def _named(check_name: str):
    def mark(step):
        step.check_name = check_name
        return step
    return mark


# --- denoisers: calls under a deadline --------------------------------------------------


@dataclass
class _Outcome:
    """One guarded call: its value, its exception, or that it overran."""

    value: object = None
    error: BaseException | None = None
    seconds: float = math.nan
    timed_out: bool = False
    skipped: bool = False
    wrote_input: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and not self.timed_out and not self.skipped

    def describe(self) -> str:
        if self.skipped:
            return "not run: an earlier call did not finish in time"
        if self.timed_out:
            return f"did not finish within {self.seconds:g} s"
        return f"raised {_one_line(self.error)}" if self.error is not None else "returned"


class _Guard:
    """Runs calls in a daemon thread with a deadline; after one overruns, runs no more.

    A call that overruns cannot be stopped from Python: its thread is left to finish or to
    end with the process, and the checks go on without it.
    """

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.overran = False

    def call(self, function: Callable[[], object]) -> _Outcome:
        if self.overran:
            return _Outcome(skipped=True)
        outcome = _Outcome()

        def target():
            start = time.perf_counter()
            try:
                outcome.value = function()
            except BaseException as error:  # reported as the check's failure
                outcome.error = error
            outcome.seconds = time.perf_counter() - start

        thread = threading.Thread(target=target, name="contract-check", daemon=True)
        thread.start()
        thread.join(self.timeout)
        if thread.is_alive():
            self.overran = True
            return _Outcome(seconds=self.timeout, timed_out=True)
        return outcome

    def denoise(self, denoiser, image: np.ndarray, sigma: float | None) -> _Outcome:
        """Call ``denoiser.denoise`` on a private copy of ``image`` and note writes into it."""
        given = image.copy()
        return self._watched(denoiser, denoiser.denoise, given, given, image, sigma)

    def denoise_tensor(self, denoiser, image: np.ndarray, sigma: float | None) -> _Outcome:
        """Call ``denoiser.denoise_tensor`` on a CPU tensor holding a private copy of ``image``
        and note writes into it."""
        import torch

        given = image.copy()
        return self._watched(denoiser, denoiser.denoise_tensor, torch.from_numpy(given), given,
                             image, sigma)

    def _watched(self, denoiser, method, argument, given: np.ndarray, image: np.ndarray,
                 sigma: float | None) -> _Outcome:
        """``method(argument, sigma)``, synchronised, under :meth:`call`; ``given`` is the
        array behind ``argument``, compared with ``image`` afterwards."""

        def call():
            denoiser.synchronize()
            output = method(argument, sigma)
            denoiser.synchronize()
            return output

        outcome = self.call(call)
        if not outcome.timed_out and not outcome.skipped:
            outcome.wrote_input = not np.array_equal(given, image)
        return outcome


def _as_array(outcome: _Outcome) -> tuple[np.ndarray | None, str]:
    """The call's output as an array, or None and why not."""
    if not outcome.ok:
        return None, outcome.describe()
    if not isinstance(outcome.value, np.ndarray):
        return None, f"returned {type(outcome.value).__name__}, expected a numpy array"
    return outcome.value, ""


def _finite_problem(outcome: _Outcome) -> str:
    """Why the call gave no finite numeric array, or an empty string."""
    output, why = _as_array(outcome)
    if output is None:
        return why
    if not np.issubdtype(output.dtype, np.number):
        return f"returned dtype {output.dtype}, expected numbers"
    if not np.all(np.isfinite(output)):
        return f"returned {int(np.size(output) - np.isfinite(output).sum())} non-finite values"
    return ""


@_named("output shape")
def _output_shape(outcome: _Outcome, shape: tuple) -> CheckResult:
    output, why = _as_array(outcome)
    if output is None:
        return CheckResult("output shape", False, why)
    if output.shape != shape:
        return CheckResult("output shape", False,
                           f"returned shape {output.shape}, expected {shape}")
    return CheckResult("output shape", True, f"{shape}")


@_named("floating dtype")
def _floating_dtype(outcome: _Outcome) -> CheckResult:
    output, why = _as_array(outcome)
    if output is None:
        return CheckResult("floating dtype", False, why)
    if not np.issubdtype(output.dtype, np.floating):
        return CheckResult("floating dtype", False,
                           f"returned dtype {output.dtype}, expected floating point in [0, 1]")
    return CheckResult("floating dtype", True, str(output.dtype))


@_named("finite values")
def _finite(outcome: _Outcome) -> CheckResult:
    problem = _finite_problem(outcome)
    return CheckResult("finite values", not problem, problem or "no NaN or inf")


@_named("input outside [0, 1]")
def _accepts_outside(outcome: _Outcome, image: np.ndarray) -> CheckResult:
    span = f"input in [{image.min():.2f}, {image.max():.2f}]"
    problem = _finite_problem(outcome)
    return CheckResult("input outside [0, 1]", not problem,
                       f"{span}: {problem}" if problem else f"{span}, finite output")


@_named("grayscale and colour")
def _gray_and_colour(main: _Outcome, other: _Outcome, main_shape: tuple, other_shape: tuple,
                     declared: tuple) -> CheckResult:
    name = "grayscale and colour"
    seen = []
    for outcome, shape in ((main, main_shape), (other, other_shape)):
        channels = 1 if len(shape) == 2 else shape[-1]
        if channels not in declared:
            if isinstance(outcome.error, BenchError):
                seen.append(f"{shape} refused ({_one_line(outcome.error)})")
                continue
            if outcome.ok:
                return CheckResult(name, False, f"declares channels {declared} but accepted "
                                   f"{shape}; refuse it with InvalidParameterError")
            return CheckResult(name, False, f"{shape}: {outcome.describe()}; declared "
                               f"channels {declared}: refuse others with InvalidParameterError")
        output, why = _as_array(outcome)
        if output is None:
            return CheckResult(name, False, f"{shape}: {why}")
        if output.shape != shape:
            return CheckResult(name, False, f"{shape} gave shape {output.shape}")
        seen.append(f"{shape} -> {output.shape}")
    return CheckResult(name, True, ", ".join(seen))


@_named("deterministic")
def _deterministic(first: _Outcome, second: _Outcome, declared: bool) -> CheckResult:
    name = "deterministic"
    a, why_a = _as_array(first)
    b, why_b = _as_array(second)
    if a is None or b is None:
        return CheckResult(name, False, f"no two outputs to compare: {why_a or why_b}")
    if a.shape != b.shape:
        return CheckResult(name, False, f"two calls gave shapes {a.shape} and {b.shape}")
    if np.array_equal(a, b, equal_nan=True):
        return CheckResult(name, True, "two calls bit-identical")
    difference = float(np.nanmax(np.abs(a.astype(np.float64) - b.astype(np.float64))))
    if not declared and difference <= NONDETERMINISTIC_TOLERANCE:
        return CheckResult(name, True, f"declares deterministic = False; two calls within "
                           f"{difference:.1e} (allowed {NONDETERMINISTIC_TOLERANCE:g})")
    if declared:
        allowed = (f" (a class may declare deterministic = False to be allowed up to "
                   f"{NONDETERMINISTIC_TOLERANCE:g})"
                   if difference <= NONDETERMINISTIC_TOLERANCE else "")
    else:
        allowed = (f", more than the {NONDETERMINISTIC_TOLERANCE:g} allowed with "
                   "deterministic = False")
    return CheckResult(name, False, f"two calls on the same input differ by up to "
                       f"{difference:.3g}{allowed}")


def _unchanged(name: str, calls: dict[str, _Outcome], keeps_input: bool) -> CheckResult:
    wrote = [label for label, outcome in calls.items() if outcome.wrote_input]
    if wrote:
        detail = f"wrote into its input in calls: {', '.join(wrote)}"
        if keeps_input:
            detail += ("; its declaration keeps_input = True is wrong (the runner hands it the "
                       "noisy image it keeps for the next cells, without a copy)")
        return CheckResult(name, False, detail)
    finished = [o for o in calls.values() if not (o.timed_out or o.skipped)]
    if not finished:
        return CheckResult(name, False, "no call finished")
    declared = ", as it declares (keeps_input = True)" if keeps_input else ""
    return CheckResult(name, True, f"{len(finished)} calls, none wrote into it{declared}")


@_named("input unchanged")
def _input_unchanged(calls: dict[str, _Outcome], keeps_input: bool) -> CheckResult:
    return _unchanged("input unchanged", calls, keeps_input)


@_named("oracle and blind")
def _oracle_and_blind(oracle: _Outcome, blind: _Outcome) -> CheckResult:
    problems = [f"{label}: {problem}" for label, outcome in (("oracle", oracle), ("blind", blind))
                if (problem := _finite_problem(outcome))]
    if problems:
        return CheckResult("oracle and blind", False, "; ".join(problems))
    return CheckResult("oracle and blind", True, f"sigma {SIGMA:g}/255 and None")


# --- denoisers: the tensor path -----------------------------------------------------------


def _tensor_problem(outcome: _Outcome, shape: tuple) -> str:
    """Why the runner would refuse the call's output on the tensor path, or an empty string."""
    if not outcome.ok:
        return outcome.describe()
    import torch

    from bench.run.worker import check_output_tensor

    try:
        check_output_tensor(outcome.value, shape, torch.device("cpu"))
    except ValueError as error:
        return str(error)
    return ""


@_named("tensor output")
def _tensor_output(calls: dict[str, _Outcome], shapes: dict[str, tuple]) -> CheckResult:
    calls_with = {}  # problem -> the calls that have it, in order
    for label, outcome in calls.items():
        if problem := _tensor_problem(outcome, shapes[label]):
            calls_with.setdefault(problem, []).append(label)
    if calls_with:
        return CheckResult("tensor output", False, "; ".join(
            f"{', '.join(labels)}: {problem}" for problem, labels in calls_with.items()))
    dtypes = sorted({str(outcome.value.dtype).removeprefix("torch.") for outcome in calls.values()})
    seen = ", ".join(sorted({str(shapes[label]) for label in calls}))
    return CheckResult("tensor output", True, f"{'/'.join(dtypes)} on cpu, {seen}, finite")


@_named("tensor blind")
def _tensor_blind(blind: _Outcome, shape: tuple) -> CheckResult:
    problem = _tensor_problem(blind, shape)
    return CheckResult("tensor blind", not problem,
                       f"sigma None: {problem}" if problem else "sigma None, valid output")


def _largest_difference(tensors: dict[str, _Outcome], shapes: dict[str, tuple],
                        references: dict[str, _Outcome],
                        what: str) -> tuple[float, str, str]:
    """The largest absolute difference between the tensor outputs and ``references`` over
    the calls of ``references``, and the call it is at; or, as the third item, why they cannot
    be compared."""
    worst, at = 0.0, ""
    for label, reference in references.items():
        outcome = tensors[label]
        problem = _tensor_problem(outcome, shapes[label])
        if problem:
            return math.nan, label, f"{label}: no tensor output to compare ({problem})"
        expected, why = _as_array(reference)
        if expected is None:
            return math.nan, label, f"{label}: {what} gave no output to compare ({why})"
        got = outcome.value.detach().cpu().numpy().astype(np.float64)
        if expected.shape != got.shape:
            return math.nan, label, (f"{label}: {what} gave shape {expected.shape}, "
                                     f"the tensor path {got.shape}")
        difference = float(np.max(np.abs(got - expected.astype(np.float64))))
        if not difference <= worst:  # a NaN difference is the worst
            worst, at = difference, label
            if math.isnan(difference):
                break
    return worst, at, ""


@_named("tensor agrees with array")
def _tensor_agrees(tensors: dict[str, _Outcome], shapes: dict[str, tuple],
                   same_code: dict[str, _Outcome],
                   cpu_code: dict[str, _Outcome] | None) -> CheckResult:
    name = "tensor agrees with array"
    what = "the array path" if cpu_code is None else "denoise_tensor_on('cpu')"
    worst, at, problem = _largest_difference(tensors, shapes, same_code, what)
    if problem:
        return CheckResult(name, False, problem)
    if not worst <= TENSOR_TOLERANCE:
        hint = ("; a class whose array path on the CPU is separate CPU code provides "
                "denoise_tensor_on(device, array, sigma), the array path of its torch code "
                "(as denoisers.on_device.RunsOnCuda does)" if cpu_code is None else "")
        return CheckResult(name, False, f"{at} call: differs from {what} by up to {worst:.3g}, "
                           f"more than {TENSOR_TOLERANCE:g}{hint}")
    calls = ", ".join(same_code)
    detail = (f"bit-identical to {what} ({calls})" if worst == 0
              else f"within {worst:.1e} of {what} ({calls}; allowed {TENSOR_TOLERANCE:g})")
    if cpu_code is not None:
        port, at, problem = _largest_difference(tensors, shapes, cpu_code, "the CPU array path")
        if problem:
            return CheckResult(name, False, problem)
        if not port <= PORT_TOLERANCE:
            return CheckResult(name, False, f"{at} call: differs from its CPU array path by up "
                               f"to {port:.3g}, more than one 8-bit level ({PORT_TOLERANCE:.2g}): "
                               "a torch port may round differently, not compute something else")
        detail += f"; its CPU array path within {port:.1e} (allowed {PORT_TOLERANCE:.2g})"
    return CheckResult(name, True, detail)


@_named("tensor input unchanged")
def _tensor_input_unchanged(calls: dict[str, _Outcome], keeps_input: bool) -> CheckResult:
    return _unchanged("tensor input unchanged", calls, keeps_input)


@_named("within timeout")
def _within_timeout(calls: dict[str, _Outcome], timed: _Outcome, shape: tuple,
                    timeout: float) -> CheckResult:
    from bench.timing import megapixels_per_second

    late = [label for label, outcome in calls.items() if outcome.timed_out]
    if late:
        return CheckResult("within timeout", False,
                           f"the {late[0]} call did not finish within {timeout:g} s")
    seconds = timed.seconds if timed.ok else max(o.seconds for o in calls.values())
    rate = megapixels_per_second(shape[0], shape[1], seconds)
    size = "x".join(str(n) for n in shape)
    return CheckResult("within timeout", True, f"{seconds:.3g} s per {size} call, {rate:.3g} MP/s")


# --- noises -----------------------------------------------------------------------------


def _levels_in_range(noise) -> list[float]:
    spec = noise.level
    inside = [level for level in noise.default_levels if spec.low <= level <= spec.high]
    return inside or [spec.default]


@_named("level range")
def _level_range(noise) -> CheckResult:
    name = "level range"
    spec = noise.level
    where = f"[{spec.low:g}, {spec.high:g}] {spec.unit}"
    if not noise.default_levels:
        return CheckResult(name, False, "no default levels")
    outside = [level for level in (spec.default, *noise.default_levels)
               if not spec.low <= level <= spec.high]
    if outside:
        return CheckResult(name, False, f"default level {outside[0]:g} outside {where}")
    gray = sample_images()[0]
    probes = [value for value in (spec.low - max(1.0, abs(spec.low)),
                                  spec.high + max(1.0, abs(spec.high))) if math.isfinite(value)]
    for level in probes:
        try:
            noise.apply(gray.copy(), level, np.random.default_rng(0))
        except InvalidParameterError:
            continue
        except Exception as error:
            return CheckResult(name, False, f"level {level:g} raised {_one_line(error)}, "
                               "expected InvalidParameterError")
        return CheckResult(name, False, f"accepted level {level:g}, outside {where}")
    levels = ", ".join(f"{level:g}" for level in noise.default_levels)
    refused = " and ".join(f"{level:g}" for level in probes)
    return CheckResult(name, True, f"defaults {levels} in [{spec.low:g}, {spec.high:g}]; "
                       f"{refused} refused")


@_named("seeding")
def _seeding(noise) -> CheckResult:
    level = max(_levels_in_range(noise))
    gray = sample_images()[0]
    first, again, other = (noise.apply(gray.copy(), level, np.random.default_rng(seed)).image
                           for seed in (0, 0, 1))
    if not np.array_equal(first, again):
        return CheckResult("seeding", False, f"level {level:g}: seed 0 twice gave different images")
    if np.array_equal(first, other):
        return CheckResult("seeding", False, f"level {level:g}: seeds 0 and 1 gave the same image")
    return CheckResult("seeding", True,
                       f"level {level:g}: seed 0 twice identical, seed 1 different")


@_named("output shape and dtype")
def _noise_output(noise) -> CheckResult:
    name = "output shape and dtype"
    for clean in sample_images():
        for level in _levels_in_range(noise):
            image = noise.apply(clean.copy(), level, np.random.default_rng(0)).image
            at = f"level {level:g}, {clean.shape}"
            if not isinstance(image, np.ndarray):
                return CheckResult(name, False, f"{at}: image is {type(image).__name__}, "
                                   "expected a numpy array")
            if image.shape != clean.shape:
                return CheckResult(name, False, f"{at}: shape {image.shape}")
            if image.dtype != np.float32:
                return CheckResult(name, False, f"{at}: dtype {image.dtype}, expected float32")
            if not np.all(np.isfinite(image)):
                return CheckResult(name, False, f"{at}: non-finite values")
    return CheckResult(name, True, "float32, (H, W) and (H, W, 3), finite")


@_named("sigma")
def _noise_sigma(noise) -> CheckResult:
    sigmas = []
    for clean in sample_images():
        for level in _levels_in_range(noise):
            sigma = noise.apply(clean.copy(), level, np.random.default_rng(0)).sigma
            if not isinstance(sigma, numbers.Real) or not math.isfinite(sigma) or sigma < 0:
                return CheckResult("sigma", False, f"level {level:g}, {clean.shape}: sigma "
                                   f"{sigma!r}, expected a finite number >= 0")
            sigmas.append(float(sigma))
    return CheckResult("sigma", True, f"{min(sigmas):.4g} to {max(sigmas):.4g}")


# --- metrics ----------------------------------------------------------------------------


def _metric_pairs() -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """(reference, estimate) pairs in float64, per image shape and case."""
    pairs = {}
    for seed, clean in enumerate(sample_images()):
        reference = clean.astype(np.float64)
        noisy = reference + np.random.default_rng(seed).standard_normal(clean.shape) * 0.1
        pairs[_shape_label(clean)] = {"identity": (reference, reference.copy()),
                                      "clipped": (reference, np.clip(noisy, 0.0, 1.0)),
                                      "unclipped": (reference, noisy)}
    return pairs


def _score(metric, reference: np.ndarray, estimate: np.ndarray):
    """The score as a float, or the exception (or reason) why there is none."""
    try:
        value = metric(reference, estimate)
    except Exception as error:
        return error
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return TypeError(f"returned {type(value).__name__}, expected one real number")
    return float(value)


def _scored(scores: dict) -> dict[str, dict[str, float]]:
    """The image shapes whose every case scored."""
    return {label: cases for label, cases in scores.items()
            if not any(isinstance(v, BaseException) for v in cases.values())}


@_named("declared attributes")
def _declared_attributes(cls, name: str) -> CheckResult:
    expected = {"name": str, "unit": str, "higher_is_better": bool, "margin": numbers.Real,
                "needs_reference": bool}
    problems = []
    for attribute, kind in expected.items():
        if not hasattr(cls, attribute):
            problems.append(f"no {attribute}")
            continue
        value = getattr(cls, attribute)
        if not isinstance(value, kind) or (kind is numbers.Real and isinstance(value, bool)):
            problems.append(f"{attribute} = {value!r} is not a {kind.__name__}")
    if isinstance(getattr(cls, "name", None), str) and cls.name != name:
        problems.append(f"name = {cls.name!r}, registered as '{name}'")
    margin = getattr(cls, "margin", 0.0)
    if isinstance(margin, numbers.Real) and not (math.isfinite(margin) and margin >= 0):
        problems.append(f"margin = {margin!r}, expected a finite number >= 0")
    if problems:
        return CheckResult("declared attributes", False, "; ".join(problems))
    direction = "higher" if cls.higher_is_better else "lower"
    unit = f" {cls.unit}" if cls.unit else ""
    return CheckResult("declared attributes", True,
                       f"{direction} is better, margin {cls.margin:g}{unit}")


def _metric_shapes(scores: dict) -> CheckResult:
    for label, cases in scores.items():
        for case, value in cases.items():
            if isinstance(value, BaseException):
                return CheckResult("grayscale and colour", False,
                                   f"{label} {case} pair raised {_one_line(value)}")
    return CheckResult("grayscale and colour", True, "(H, W) and (H, W, 3): one number each")


@_named("identity is best")
def _identity_is_best(cls, scores: dict) -> CheckResult:
    usable = _scored(scores)
    if not usable:
        return CheckResult("identity is best", False, "no image shape scored")
    higher = bool(getattr(cls, "higher_is_better", True))
    seen = []
    for label, cases in usable.items():
        identity, noisy = cases["identity"], cases["clipped"]
        best = identity >= noisy if higher else identity <= noisy
        if math.isnan(identity) or not best:
            direction = "higher" if higher else "lower"
            return CheckResult("identity is best", False, f"{label}: identity {identity:.4g}, "
                               f"noisy {noisy:.4g}, with {direction} is better")
        seen.append(f"{label} {identity:.4g} vs noisy {noisy:.4g}")
    return CheckResult("identity is best", True, ", ".join(seen))


def _metric_finite(scores: dict) -> CheckResult:
    usable = _scored(scores)
    if not usable:
        return CheckResult("finite on a noisy pair", False, "no image shape scored")
    for label, cases in usable.items():
        for case in ("clipped", "unclipped"):
            if not math.isfinite(cases[case]):
                return CheckResult("finite on a noisy pair", False,
                                   f"{label} {case} noisy pair scored {cases[case]}")
    return CheckResult("finite on a noisy pair", True, "clipped and unclipped, "
                       + " and ".join(usable))
