"""The one atomic writer (bench.files) behind the results table, model cards and weights."""

import json

import pytest

from bench.files import replacing, write_atomic


def test_write_atomic_failure_keeps_the_old_file(tmp_path):
    path = tmp_path / "table.json"
    write_atomic(path, "old")
    with pytest.raises(RuntimeError, match="disk full"):
        with replacing(path) as tmp:
            tmp.write_text("half a file")
            raise RuntimeError("disk full")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["table.json"]


def test_write_json_replaces_the_card_without_leftovers(tmp_path):
    from denoisers.model_io import write_json

    path = tmp_path / "model.json"
    write_json(path, {"architecture": {"name": "DnCNN"}, "note": "σ ∞"})
    write_json(path, {"architecture": {"name": "FFDNet"}})
    assert json.loads(path.read_text(encoding="utf-8")) == {"architecture": {"name": "FFDNet"}}
    assert path.read_text(encoding="utf-8").endswith("}\n")
    assert [p.name for p in tmp_path.iterdir()] == ["model.json"]


def test_save_weights_round_trip_without_leftovers(tmp_path):
    torch = pytest.importorskip("torch")
    from denoisers.model_io import card_path, read_card, read_tensors, save_weights

    network = torch.nn.Conv2d(1, 2, 3)
    path = save_weights(network, tmp_path / "net.safetensors",
                        {"architecture": {"name": "Conv2d"}})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.json", "net.safetensors"]
    assert card_path(path).is_file() and read_card(path)["weights_file"] == "net.safetensors"
    tensors = read_tensors(path)
    assert torch.equal(tensors["weight"], network.weight.detach())


def test_results_table_is_rebuilt_without_leftovers(tmp_path):
    pd = pytest.importorskip("pandas")
    from bench.store.results import CSV, PARQUET, RECORDS, RunStore

    store = RunStore(tmp_path / "run")
    store.close()
    cell = {"dataset": "skimage", "image": "camera", "height": 37, "width": 31, "channels": 1,
            "noise": "gaussian", "level": 25.0, "noise_params": "{}", "seed": 0,
            "mode": "oracle", "protocol": "default", "sigma_used": 25.0, "denoiser": "median",
            "params": "{}", "device": "cpu", "psnr": 28.0, "ssim": 0.8, "noisy_psnr": 20.2,
            "noisy_ssim": 0.4, "seconds": 0.01, "mpix_per_s": 0.1, "status": "ok", "error": "",
            "workers": 1, "timing": "parallel", "peak_memory_mb": 1.0, "gpu": "",
            "precision": "", "method": "median"}
    rows = [dict(cell, cell_id="b", seed=1, psnr=30.5), dict(cell, cell_id="a")]
    (tmp_path / "run" / RECORDS).write_text("".join(json.dumps(r) + "\n" for r in rows))
    frame = RunStore(tmp_path / "run").finish(order=["a", "b"])
    assert list(frame["cell_id"]) == ["a", "b"]
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "run" / PARQUET), frame)
    assert not [p.name for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")]
    assert (tmp_path / "run" / CSV).is_file()


def test_tuned_toml_interrupted_write_keeps_the_old_file(tmp_path, monkeypatch):
    from pathlib import Path

    from bench.tune.tuned import write_tuned

    path = write_tuned(tmp_path / "tuned.toml", {"nlm": {"gaussian@25": {"h_factor": 0.7}}})
    before = path.read_text(encoding="utf-8")
    write_text = Path.write_text

    def interrupted(self, text, *args, **kwargs):
        write_text(self, text[:10], *args, **kwargs)  # half a file, then the user's Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_text", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_tuned(path, {"tv": {"gaussian@25": {"weight_factor": 0.5}}})
    monkeypatch.undo()
    assert path.read_text(encoding="utf-8") == before
    assert [p.name for p in tmp_path.iterdir()] == ["tuned.toml"]
