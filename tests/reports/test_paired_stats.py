"""Paired statistics (reports.paired): seeds averaged per image, Wilcoxon tests, Holm's correction,
ties and "too few images", ``--baseline`` on the command line, and the protocol check of compare."""

import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bench.errors import DataError
from bench.store.results import load_results
from conftest import invoke
from reports import compare, image_means, paired_differences, summarise_ci, winners
from reports.paired import (REFERENCE, SEPARATED, TIED, TOO_FEW, WORSE, can_separate, holm,
                            resolve_baseline, smallest_p, wilcoxon_p)



def make_results(scores: dict[str, np.ndarray], *, level: float = 25.0) -> pd.DataFrame:
    """A results table: ``scores[method]`` is an images x seeds array of PSNRs (dB).

    SSIM is PSNR / 100 so that both metrics order the methods alike.
    """
    rows = []
    for method, values in scores.items():
        values = np.asarray(values, dtype=float).reshape(len(values), -1)
        for image, seeds in enumerate(values):
            for seed, psnr in enumerate(seeds):
                rows.append({"dataset": "set", "image": f"im{image:02d}", "noise": "gaussian",
                             "level": level, "noise_params": "{}", "seed": seed,
                             "mode": "oracle", "denoiser": method, "device": "cpu",
                             "method": method, "status": "ok", "psnr": psnr,
                             "ssim": psnr / 100, "noisy_psnr": 20.0, "noisy_ssim": 0.2,
                             "mpix_per_s": 1.0, "seconds": 0.1})
    return pd.DataFrame(rows)


def by_method(table: pd.DataFrame) -> pd.DataFrame:
    return table.set_index("method")


# --- the unit is the image ---------------------------------------------------------------------

def test_image_means_average_the_seeds_of_each_image():
    rng = np.random.default_rng(0)
    base = 30 + rng.normal(0, 2, size=(6, 1))
    results = make_results({"a": base + rng.normal(0, 0.2, (6, 2)),
                            "b": base - 0.4 + rng.normal(0, 0.2, (6, 2))})
    means = image_means(results)
    assert len(means) == 12 and (means["seeds"] == 2).all()
    expected = results.groupby(["method", "image"])["psnr"].mean()
    np.testing.assert_allclose(means.set_index(["method", "image"])["psnr"].loc[expected.index],
                               expected, rtol=1e-12)

    summary = by_method(summarise_ci(results))
    assert summary.loc["a", "n"] == 12 and summary.loc["a", "images"] == 6
    a_images = expected.loc["a"]
    half = stats.t.ppf(0.975, 5) * a_images.std() / np.sqrt(6)
    assert summary.loc["a", "psnr_ci"] == pytest.approx(half, rel=1e-12)
    assert summary.loc["a", "psnr"] == pytest.approx(results.loc[results.method == "a", "psnr"].mean())

    paired = by_method(paired_differences(results))
    differences = expected.loc["b"] - expected.loc["a"]
    assert paired.loc["b", "images"] == 6  # not 12: two seeds do not double n
    assert paired.loc["b", "psnr_diff"] == pytest.approx(differences.mean(), rel=1e-12)
    assert paired.loc["b", "psnr_ci"] == pytest.approx(
        stats.t.ppf(0.975, 5) * differences.std() / np.sqrt(6), rel=1e-12)
    assert paired.loc["b", "psnr_p"] == pytest.approx(stats.wilcoxon(differences).pvalue)
    assert paired.loc["a", "psnr_verdict"] == REFERENCE and paired.loc["a", "psnr_diff"] == 0


def test_two_seeds_do_not_make_four_images_enough():
    """4 images x 2 seeds, one method 1 dB worse everywhere: 4 units, not 8, so too few."""
    rng = np.random.default_rng(1)
    base = 30 + rng.normal(0, 2, size=(4, 1)) + rng.normal(0, 0.1, (4, 2))
    results = make_results({"a": base, "b": base - 1.0 - rng.uniform(0, 0.1, (4, 2))})
    paired = by_method(paired_differences(results))
    assert paired.loc["b", "images"] == 4
    assert paired.loc["b", "psnr_p"] == pytest.approx(smallest_p(4)) == 0.125
    assert paired.loc["b", "psnr_verdict"] == TOO_FEW
    assert can_separate(8, 1) and not can_separate(4, 1)  # what counting cells would have said


# --- the tests themselves ----------------------------------------------------------------------

def test_holm_matches_a_hand_computation():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> 0.06 (monotone)
    np.testing.assert_allclose(holm(p), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm([0.5, np.nan, 0.01]), [0.5, np.nan, 0.02])
    np.testing.assert_allclose(holm([0.4, 0.6]), [0.8, 0.8])
    assert holm([0.9, 0.8])[0] == 1.0  # capped at 1


def test_paired_differences_holm_corrects_across_the_methods_of_a_condition():
    rng = np.random.default_rng(2)
    base = 30 + rng.normal(0, 2, size=(12, 1))
    shifts = {"a": 0.0, "b": -0.1, "c": -0.3, "d": -0.05, "e": -0.6}
    results = make_results({m: base + s + rng.normal(0, 0.3, (12, 1)) for m, s in shifts.items()})
    paired = by_method(paired_differences(results))
    reference = paired["reference"].iloc[0]
    assert (paired["reference"] == reference).all() and paired.loc[reference, "psnr_verdict"] == REFERENCE
    others = [m for m in shifts if m != reference]
    raw = []
    for method in others:
        part = results.set_index(["method", "image"])["psnr"]
        raw.append(stats.wilcoxon(part.loc[method] - part.loc[reference]).pvalue)
    np.testing.assert_allclose(paired.loc[others, "psnr_p"], raw, rtol=1e-12)
    m = len(raw)
    order = np.argsort(raw)
    by_hand = np.empty(m)
    running = 0.0
    for k, index in enumerate(order):
        running = max(running, min(1.0, (m - k) * raw[index]))
        by_hand[index] = running
    np.testing.assert_allclose(paired.loc[others, "psnr_p_holm"], by_hand, rtol=1e-12)
    assert paired.loc["e", "psnr_verdict"] == WORSE
    significant = paired.loc[others, "psnr_p_holm"] < 0.05
    assert set(paired.loc[others][~significant]["psnr_verdict"]) <= {TIED}


def test_all_zero_differences_give_p_1_not_an_exception():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert wilcoxon_p(np.zeros(7)) == 1.0
        assert wilcoxon_p([0.0, 0.0, 0.3, 0.2, 0.1, 0.5, 0.4, 0.6]) == pytest.approx(
            stats.wilcoxon([0.3, 0.2, 0.1, 0.5, 0.4, 0.6]).pvalue)  # zeros dropped
        assert np.isnan(wilcoxon_p([]))
        rng = np.random.default_rng(3)
        base = 30 + rng.normal(0, 2, size=(10, 1))
        results = make_results({"a": base + 0.5, "twin": base + 0.5, "b": base})
        paired = by_method(paired_differences(results))
        best = winners(summarise_ci(results), results=results).iloc[0]
    assert paired.loc["twin", "psnr_p"] == 1.0 and paired.loc["twin", "psnr_diff"] == 0
    assert paired.loc["twin", "psnr_verdict"] == TIED and paired.loc["b", "psnr_verdict"] == WORSE
    assert best["psnr_winner"] == "a" and best["psnr_tied"] == ("twin",)
    assert best["psnr_separation"] == TIED


# --- ties and too few images -------------------------------------------------------------------

def test_eight_images_and_eleven_methods_are_too_few_to_separate():
    rng = np.random.default_rng(4)
    base = 30 + rng.normal(0, 2, size=(8, 1))
    scores = {"best": base}
    for k in range(10):  # every one of them 1 dB or more worse on every image
        scores[f"m{k}"] = base - 1.0 - 0.1 * k - rng.uniform(0, 0.05, (8, 1))
    results = make_results(scores)
    assert smallest_p(8) * 10 > 0.05 and not can_separate(8, 10)
    paired = by_method(paired_differences(results))
    np.testing.assert_allclose(paired.drop("best")["psnr_p"], smallest_p(8))
    assert (paired.drop("best")["psnr_verdict"] == TOO_FEW).all()
    row = winners(summarise_ci(results), results=results).iloc[0]
    assert row["psnr_winner"] == "best" and row["psnr_separation"] == TOO_FEW
    assert row["psnr_tied"] == () and row["ssim_separation"] == TOO_FEW
    # with three methods the same eight images do separate them
    few = make_results({k: scores[k] for k in ("best", "m0", "m1")})
    assert winners(summarise_ci(few), results=few).iloc[0]["psnr_separation"] == SEPARATED


def test_thirty_images_with_a_clear_half_db_difference_are_significant_not_tied():
    rng = np.random.default_rng(5)
    base = 30 + rng.normal(0, 2, size=(30, 1))
    results = make_results({"a": base, "b": base - 0.5 + rng.normal(0, 0.3, (30, 1)),
                            "c": base + rng.normal(0, 0.3, (30, 1))})
    paired = by_method(paired_differences(results, baseline="a"))
    assert paired.loc["b", "psnr_p_holm"] < 1e-4 and paired.loc["b", "psnr_verdict"] == WORSE
    assert paired.loc["c", "psnr_verdict"] == TIED  # no real difference
    row = winners(summarise_ci(results), results=results).iloc[0]
    assert "b" not in row["psnr_tied"] and row["psnr_separation"] in (TIED, SEPARATED)
    if row["psnr_winner"] == "a":
        assert row["psnr_tied"] == ("c",)


def test_winners_without_results_leave_the_tie_columns_empty():
    results = make_results({"a": np.full((3, 1), 30.0), "b": np.full((3, 1), 29.0)})
    row = winners(summarise_ci(results)).iloc[0]
    assert row["psnr_winner"] == "a" and row["psnr_tied"] == () and row["psnr_separation"] is None


def test_baseline_names_a_method_or_a_denoiser_that_ran_once():
    assert resolve_baseline("bm3d", ["nlm", "bm3d"]) == "bm3d"
    assert resolve_baseline("dncnn", ["nlm", "dncnn@cuda"]) == "dncnn@cuda"
    assert resolve_baseline("median", ["median", "median(size=5)"]) == "median"
    with pytest.raises(DataError, match="several methods: median\\(size=3\\), median\\(size=5\\)"):
        resolve_baseline("median", ["median(size=3)", "median(size=5)"])
    with pytest.raises(DataError, match="did you mean 'bm3d'"):
        resolve_baseline("bm3dd", ["nlm", "bm3d"])
    rng = np.random.default_rng(6)
    base = 30 + rng.normal(0, 2, size=(6, 1))
    results = make_results({"a": base + 1, "b": base})
    paired = by_method(paired_differences(results, baseline="b"))
    assert (paired["reference"] == "b").all()
    assert paired.loc["a", "psnr_diff"] == pytest.approx(1.0)
    assert paired.loc["a", "ssim_diff"] == pytest.approx(0.01)


# --- the command line and compare ----------------------------------------------------------------

@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """Two denoisers on three images, two seeds: ``bench run --baseline median``."""
    path = tmp_path_factory.mktemp("paired") / "run"
    done = invoke("run", "--quiet", "--denoisers", "median,gaussian_blur", "--noises",
                 "gaussian:25", "--limit", "3", "--crop", "32", "--seeds", "0,1",
                 "--executor", "serial", "--baseline", "median", "--out", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    return path, done


def test_cli_run_and_report_take_a_baseline(run_dir):
    path, done = run_dir
    words = " ".join(done.stdout.split())
    assert "paired difference to median" in words and "reference" in done.stdout
    markdown = (path / "report.md").read_text(encoding="utf-8")
    assert "paired difference to median" in markdown and "A tie is not equivalence" in markdown
    row = next(line for line in markdown.splitlines() if line.startswith("| gaussian_blur |"))
    assert "(Δ " in row
    assert next(line for line in markdown.splitlines()
                if line.startswith("| median |")).count("(reference)") == 1

    again = invoke("report", str(path), "--baseline", "gaussian_blur")
    assert again.returncode == 0, again.stderr
    assert "paired difference to gaussian_blur" in " ".join(again.stdout.split())
    assert "paired difference to gaussian_blur" in (path / "report.md").read_text(encoding="utf-8")
    default = invoke("report", str(path))
    assert default.returncode == 0 and "paired difference to the best" in " ".join(
        default.stdout.split())
    assert "too few images to separate" in default.stdout  # three images
    assert "A tie is not equivalence" in " ".join(default.stdout.split())

    wrong = invoke("report", str(path), "--baseline", "mediann")
    assert wrong.returncode == 2 and "did you mean 'median'" in wrong.stderr
    assert "Traceback" not in wrong.stderr and len(wrong.stderr.strip().splitlines()) == 1


def test_cli_compare_takes_a_baseline_and_pairs_by_image(run_dir):
    path, _ = run_dir
    table = compare(load_results(path), load_results(path), baseline="median")
    assert (table["n"] == 6).all() and (table["images"] == 3).all()
    assert (table["reference"] == "median").all() and (table["psnr_diff"] == 0).all()
    assert (table["psnr_p"] == 1.0).all() and (table["status"] == "unchanged").all()
    blur = table.set_index("method").loc["gaussian_blur"]
    results = load_results(path)
    per_image = results.groupby(["method", "image"])["psnr"].mean()
    expected = (per_image.loc["gaussian_blur"] - per_image.loc["median"]).mean()
    assert blur["psnr_vs_reference_a"] == pytest.approx(expected)
    assert blur["psnr_vs_reference_b"] == pytest.approx(expected)

    shown = invoke("compare", str(path), str(path), "--baseline", "median")
    assert shown.returncode == 0, shown.stderr
    assert "to reference, A → B" in shown.stdout and "(median)" in shown.stdout
    wrong = invoke("compare", str(path), str(path), "--baseline", "nope")
    assert wrong.returncode == 2 and "not a method" in wrong.stderr


def with_protocol(source, target, protocol):
    """A copy of run ``source`` whose cells say they were scored under ``protocol``.

    ``protocol=None`` drops the column, as in a run written before it existed.
    """
    shutil.copytree(source, target)
    (target / "cells.jsonl").unlink()
    table = pd.read_parquet(target / "results.parquet")
    if protocol is None:
        table = table.drop(columns="protocol")
    else:
        table["protocol"] = protocol
    table.to_parquet(target / "results.parquet", index=False)
    return target


def test_compare_refuses_runs_scored_under_different_protocols(run_dir, tmp_path):
    path, _ = run_dir
    assert set(load_results(path)["protocol"]) == {"default"}
    paper = with_protocol(path, tmp_path / "paper", "dncnn-paper")
    with pytest.raises(DataError, match="different protocols \\(A: default; B: dncnn-paper\\)"):
        compare(load_results(path), load_results(paper))
    refused = invoke("compare", str(path), str(paper), "--fail-on-regression")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "different protocols" in refused.stderr and "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1

    old = with_protocol(path, tmp_path / "old", None)  # before the column: counts as default
    assert (compare(load_results(old), load_results(path))["status"] == "unchanged").all()
    with pytest.raises(DataError, match="different protocols"):
        compare(load_results(old), load_results(paper))
