"""Contract checks: the built-ins and the example plugin pass, a broken plugin fails by name."""


import pytest

import broken_plugin
from bench import cli
from bench.catalog import register_builtins
from bench.contract import EXIT_CHECK_FAILED, check, check_kind, kinds_to_check
from bench.errors import EXIT_USAGE, InvalidParameterError, MissingExtraError, UnknownNameError
from bench.registry import BUILTIN, Registry, default_registry
from conftest import EXAMPLE_PLUGIN as PLUGIN
from conftest import fake_plugin, require

EXAMPLE = "denoise-bench-example-plugin"


def _builtins() -> list[tuple[str, str]]:
    registry = Registry()
    register_builtins(registry)
    # Denoisers that need the user's files (dncnn_paper's weights) cannot run without them.
    return [(kind, entry.name) for kind in ("denoiser", "noise", "metric")
            for entry in registry.entries(kind) if entry.in_default_sweep]


@pytest.fixture(scope="module")
def broken_registry():
    return broken_plugin.make_registry()


@pytest.mark.parametrize("kind,name", _builtins())
def test_contract_builtin_passes(kind, name):
    registry = default_registry()
    for module in registry.get(kind, name).missing():
        require(module)
    report = check_kind(kind, name, registry)
    assert report.origin == BUILTIN
    failed = [(r.check, r.detail) for r in report.failures]
    assert report.passed, failed


ARRAY_CHECKS = ["set up", "output shape", "floating dtype", "finite values",
                "input outside [0, 1]", "grayscale and colour", "deterministic", "input unchanged",
                "oracle and blind"]
TENSOR_CHECKS = ["tensor output", "tensor blind", "tensor agrees with array",
                 "tensor input unchanged"]


def test_contract_denoiser_runs_every_check_and_reports_throughput():
    report = check_kind("denoiser", "median", default_registry())
    assert [r.check for r in report.results] == ARRAY_CHECKS + TENSOR_CHECKS + ["within timeout"]
    outside = report.results[4].detail
    assert outside.startswith("input in [-") and "1.1" in outside  # it did leave [0, 1]
    assert "MP/s" in report.results[-1].detail


def test_contract_denoiser_without_tensor_path_has_no_tensor_rows(broken_registry):
    report = check_kind("denoiser", "smooth", broken_registry)
    assert [r.check for r in report.results] == ARRAY_CHECKS + ["within timeout"]


@pytest.mark.parametrize("name, cpu_code", [("dncnn", False), ("nlm", True)])
def test_contract_tensor_path_is_compared_with_the_array_path_of_its_code(name, cpu_code):
    """A learned model against ``denoise``; a torch port against ``denoise_tensor_on``, and its
    CPU code within one 8-bit level only."""
    registry = default_registry()
    for module in registry.get("denoiser", name).missing():
        require(module)
    result = {r.check: r for r in check_kind("denoiser", name, registry).results}
    agreement = result["tensor agrees with array"]
    assert agreement.passed, agreement.detail
    if cpu_code:
        # blind: the tensor path may estimate sigma in torch, the port's array path in NumPy
        assert "to denoise_tensor_on('cpu') (oracle, blind" in agreement.detail
        assert "its CPU array path within" in agreement.detail
    else:
        assert agreement.detail == ("bit-identical to the array path "
                                    "(oracle, blind, outside [0, 1], colour)")


def test_contract_tensor_output_says_what_the_runner_records(broken_registry):
    """The row gives the runner's reason for failing a cell on the tensor path, word for word."""
    from bench.plan import Cell
    from bench.run.worker import CellRunner, WorkerConfig

    report = check_kind("denoiser", "tensor_returns_uint8", broken_registry)
    detail = {r.check: r.detail for r in report.results}["tensor output"]
    cell = Cell(dataset="skimage", image="camera", noise="gaussian", level=25.0,
                noise_params=(), seed=0, mode="oracle", denoiser="tensor_returns_uint8",
                params=(), device="cpu")
    runner = CellRunner(WorkerConfig(crop=64, tensor_path="always"), broken_registry)
    record = runner.run(cell).record
    assert record.status != "ok"
    reason = record.error.removeprefix("ValueError: ")
    assert reason == "returned dtype uint8, expected a floating-point array with values in [0, 1]"
    assert detail == f"oracle, outside [0, 1], colour: {reason}"


def test_contract_tensor_disagreement_names_the_call_and_the_tolerance(broken_registry):
    report = check_kind("denoiser", "tensor_clamps", broken_registry)
    (failure,) = report.failures
    assert failure.check == "tensor agrees with array"
    assert failure.detail.startswith("outside [0, 1] call: differs from the array path by up to")
    assert "more than 1e-05" in failure.detail and "denoise_tensor_on" in failure.detail


def test_contract_wrong_torch_port_fails_against_its_cpu_code(broken_registry):
    report = check_kind("denoiser", "port_computes_something_else", broken_registry)
    (failure,) = report.failures
    assert failure.check == "tensor agrees with array"
    assert "differs from its CPU array path" in failure.detail
    assert "more than one 8-bit level" in failure.detail


@pytest.mark.parametrize("name, check", [("writes_into_input_declared", "input unchanged"),
                                         ("tensor_writes_into_input", "tensor input unchanged")])
def test_contract_wrong_keeps_input_declaration_is_named(broken_registry, name, check):
    (failure,) = check_kind("denoiser", name, broken_registry).failures
    assert failure.check == check
    assert "its declaration keeps_input = True is wrong" in failure.detail


def test_contract_undeclared_writes_fail_without_blaming_a_declaration(broken_registry):
    (failure,) = check_kind("denoiser", "writes_into_input", broken_registry).failures
    assert failure.check == "input unchanged" and "keeps_input" not in failure.detail


@pytest.mark.parametrize("kind,name", [("denoiser", "example_box"), ("noise", "example_uniform")])
def test_contract_example_plugin_passes(monkeypatch, kind, name):
    monkeypatch.syspath_prepend(str(PLUGIN))
    from bench_example_plugin import register

    registry = Registry()
    with registry.registering_as(EXAMPLE, "0.1.0"):
        register(registry)
    report = check_kind(kind, name, registry)
    assert report.origin == f"plugin {EXAMPLE} 0.1.0"
    assert report.passed, [(r.check, r.detail) for r in report.failures]


@pytest.mark.parametrize("name", sorted(broken_plugin.BROKEN))
def test_contract_broken_plugin_fails_the_named_check(broken_registry, name):
    kind, _, expected = broken_plugin.BROKEN[name]
    report = check_kind(kind, name, broken_registry)
    assert report.origin == f"plugin {broken_plugin.DISTRIBUTION} 0"
    failed = [(r.check, r.detail) for r in report.failures]
    assert {check for check, _ in failed} == expected, failed
    assert all(r.detail for r in report.failures)


@pytest.mark.parametrize("name", sorted(broken_plugin.WELL_DECLARED))
def test_contract_declarations_are_honoured(broken_registry, name):
    kind, _ = broken_plugin.WELL_DECLARED[name]
    report = check_kind(kind, name, broken_registry)
    assert report.passed, [(r.check, r.detail) for r in report.failures]


def test_contract_uint8_output_names_the_dtype(broken_registry):
    report = check_kind("denoiser", "returns_uint8", broken_registry)
    (failure,) = report.failures
    assert failure.check == "floating dtype" and "uint8" in failure.detail


def test_contract_gray_only_declaration_reports_the_refusal(broken_registry):
    report = check_kind("denoiser", "gray_only_declared", broken_registry)
    result = {r.check: r for r in report.results}
    assert "(64, 64, 3) refused (InvalidParameterError" in result["grayscale and colour"].detail


def test_contract_hanging_denoiser_fails_within_timeout_and_returns(broken_registry):
    report = check_kind("denoiser", "hangs", broken_registry, timeout=0.5)  # it sleeps an hour
    result = {r.check: r for r in report.results}
    assert not result["within timeout"].passed
    assert "did not finish within 0.5 s" in result["within timeout"].detail


def test_contract_name_registered_as_several_kinds_is_checked_as_each():
    registry = Registry()
    registry.add("denoiser", "twin", "denoisers.wavelet:WaveletBayesShrink", "a denoiser")
    registry.add("noise", "twin", "noises.gaussian:Gaussian", "a noise")
    registry.add("dataset", "twin", "bench.datasets:SkimageSamples", "a dataset")
    reports = check("twin", registry)
    assert [(r.kind, r.passed) for r in reports] == [("denoiser", True), ("noise", True)]
    assert [r.kind for r in check("twin", registry, kind="noise")] == ["noise"]


def test_contract_builtin_class_under_another_name_passes():
    """A plugin may register a built-in class under a name of its own: the registry then sets
    the instance's ``name``, and the tensor path must still find the method's torch version."""
    registry = Registry()
    registry.add("denoiser", "my_median", "denoisers.filters:Median", "a built-in, renamed")
    report = check_kind("denoiser", "my_median", registry)
    assert report.passed, [(r.check, r.detail) for r in report.failures]


def test_contract_unknown_name_suggests_the_closest():
    with pytest.raises(UnknownNameError, match="unknown name 'bm4d'; did you mean 'bm3d'"):
        kinds_to_check("bm4d", default_registry())
    with pytest.raises(UnknownNameError, match="unknown noise 'median'"):
        kinds_to_check("median", default_registry(), kind="noise")


def test_contract_dataset_has_no_checks():
    with pytest.raises(InvalidParameterError, match="'skimage' is a dataset"):
        kinds_to_check("skimage", default_registry())


def test_contract_missing_extra_is_an_error_before_any_check():
    registry = Registry()
    registry.add("denoiser", "ghost", "ghost_module:Ghost", "needs a missing module",
                 requires=("ghost_module_that_is_not_installed",), install_hint="pip install ghost")
    with pytest.raises(MissingExtraError, match="pip install ghost"):
        check("ghost", registry)


def test_cli_check_plugin_builtin_prints_a_passing_table(wide_console, capsys):
    assert cli.main(["check-plugin", "median"]) == 0
    out = capsys.readouterr().out
    assert "denoiser median (built-in)" in out
    table, summary, _ = out.partition("14 checks, 0 failed")
    assert summary
    assert "floating dtype" in table and "float32" in table
    assert "tensor agrees with array" in table
    assert table.count(" pass ") == 14 and "fail" not in table


def test_cli_check_plugin_unknown_name_is_one_line_and_exit_2(capsys):
    assert cli.main(["check-plugin", "bm4d"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "unknown name 'bm4d'; did you mean 'bm3d'" in err and len(err.strip().splitlines()) == 1


def test_cli_check_plugin_failures_exit_1_naming_the_checks(monkeypatch, wide_console, capsys):
    monkeypatch.setattr("bench.registry.default_registry", broken_plugin.make_registry)
    status = cli.main(["check-plugin", "ignores_seed", "mse_higher_is_better", "--timeout", "60"])
    captured = capsys.readouterr()
    assert status == EXIT_CHECK_FAILED
    assert "noise ignores_seed (plugin broken-plugin 0)" in captured.out
    assert "8 checks, 2 failed" in captured.out
    assert ("2 check(s) failed: noise ignores_seed: seeding; "
            "metric mse_higher_is_better: identity is best") in captured.err


def test_cli_check_plugin_names_a_failed_tensor_check(monkeypatch, wide_console, capsys):
    monkeypatch.setattr("bench.registry.default_registry", broken_plugin.make_registry)
    assert cli.main(["check-plugin", "tensor_writes_into_input"]) == EXIT_CHECK_FAILED
    captured = capsys.readouterr()
    assert "14 checks, 1 failed" in captured.out
    assert ("1 check(s) failed: denoiser tensor_writes_into_input: tensor input unchanged"
            in captured.err)


def test_cli_check_plugin_kind_option_limits_the_kinds(monkeypatch, wide_console, capsys):
    monkeypatch.setattr("bench.registry.default_registry", broken_plugin.make_registry)
    assert cli.main(["check-plugin", "additive", "--kind", "denoiser"]) == EXIT_USAGE
    assert "unknown denoiser 'additive'" in capsys.readouterr().err


def test_cli_check_plugin_installed_broken_plugin_exits_1(run_cli, installed_plugin, tmp_path):
    installed_plugin(fake_plugin(tmp_path / "site", "broken-plugin",
                                 {"returns_uint8": "broken_plugin:ReturnsUint8",
                                  "smooth": "broken_plugin:_Smooth"}))
    out = run_cli("check-plugin", "returns_uint8", "smooth")
    assert out.returncode == EXIT_CHECK_FAILED, out.stderr
    assert "denoiser returns_uint8 (plugin broken-plugin 0.1)" in out.stdout
    assert "returned dtype uint8" in out.stdout
    assert "20 checks, 1 failed" in out.stdout
    assert "1 check(s) failed: denoiser returns_uint8: floating dtype" in out.stderr


def test_cli_check_plugin_installed_example_plugin_passes(run_cli, installed_plugin,
                                                          example_plugin_site):
    if example_plugin_site is not None:
        installed_plugin(example_plugin_site)
    out = run_cli("check-plugin", "example_box", "example_uniform")
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"denoiser example_box (plugin {EXAMPLE} 0.1.0)" in out.stdout
    assert f"noise example_uniform (plugin {EXAMPLE} 0.1.0)" in out.stdout
    assert "14 checks, 0 failed" in out.stdout
