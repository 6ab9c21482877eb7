import imageio.v3 as iio
import numpy as np
import pytest

from bench.datasets import MIN_SIZE, load_dataset, to_float_image
from bench.errors import DataError, UnknownNameError


def test_skimage_dataset_has_gray_and_colour_float_images():
    loaded = load_dataset("skimage")
    shapes = {image.ndim for image in loaded.images.values()}
    assert shapes == {2, 3}
    for image in loaded.images.values():
        assert image.dtype == np.float32 and 0 <= image.min() and image.max() <= 1
    assert len(loaded.content_hash) == 64


def test_dataset_crop_and_limit():
    loaded = load_dataset("skimage", crop=40, limit=3)
    assert len(loaded.images) == 3
    assert all(image.shape[:2] == (40, 40) for image in loaded.images.values())


def write_images(folder, rng):
    folder.mkdir(exist_ok=True)
    iio.imwrite(folder / "a.png", rng.integers(0, 256, (40, 30), dtype=np.uint8))
    iio.imwrite(folder / "b.png", rng.integers(0, 65536, (40, 30), dtype=np.uint16))
    iio.imwrite(folder / "c.png", rng.integers(0, 256, (40, 30, 4), dtype=np.uint8))  # RGBA
    iio.imwrite(folder / "d.jpg", rng.integers(0, 256, (40, 30, 3), dtype=np.uint8))
    iio.imwrite(folder / "e.tif", rng.random((40, 30), dtype=np.float32))
    iio.imwrite(folder / "f.bmp", rng.integers(0, 256, (40, 30, 3), dtype=np.uint8))
    (folder / "notes.txt").write_text("not an image")


def test_folder_dataset_converts_every_format(tmp_path, rng):
    write_images(tmp_path / "imgs", rng)
    loaded = load_dataset(f"folder:{tmp_path / 'imgs'}")
    assert sorted(loaded.images) == ["a.png", "b.png", "c.png", "d.jpg", "e.tif", "f.bmp"]
    assert loaded.images["c.png"].shape == (40, 30, 3)  # alpha dropped
    b = iio.imread(tmp_path / "imgs" / "b.png")
    assert np.allclose(loaded.images["b.png"], b / 65535, atol=1e-6)  # 16-bit scaled by 65535
    for image in loaded.images.values():
        assert image.dtype == np.float32 and 0 <= image.min() and image.max() <= 1


def test_folder_hash_changes_with_content(tmp_path, rng):
    write_images(tmp_path / "imgs", rng)
    before = load_dataset(f"folder:{tmp_path / 'imgs'}").content_hash
    iio.imwrite(tmp_path / "imgs" / "a.png", np.zeros((40, 30), dtype=np.uint8))
    assert load_dataset(f"folder:{tmp_path / 'imgs'}").content_hash != before


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(f"folder:{tmp_path / 'nope'}")


def test_empty_folder_is_a_clear_error(tmp_path):
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(DataError, match="holds no image"):
        load_dataset(f"folder:{tmp_path}")


def test_corrupt_image_names_the_file(tmp_path, rng):
    write_images(tmp_path, rng)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(DataError, match="broken.png"):
        load_dataset(f"folder:{tmp_path}")


def test_truncated_jpeg_names_the_file(tmp_path, rng):
    iio.imwrite(tmp_path / "whole.jpg", rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    data = (tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 3])
    try:
        loaded = load_dataset(f"folder:{tmp_path}")
    except DataError as error:
        assert "cut.jpg" in str(error)
    else:  # some decoders fill a truncated JPEG with grey: then it must still be a valid image
        assert loaded.images["cut.jpg"].shape == (64, 64, 3)


def test_tiny_image_is_refused_with_its_name(tmp_path):
    iio.imwrite(tmp_path / "dot.png", np.zeros((1, 1), dtype=np.uint8))
    with pytest.raises(DataError, match=f"dot.png.*at least {MIN_SIZE}x{MIN_SIZE}"):
        load_dataset(f"folder:{tmp_path}")


def test_unknown_dataset_suggests_closest():
    with pytest.raises(UnknownNameError, match="did you mean 'skimage'"):
        load_dataset("skimag")


@pytest.mark.parametrize("array, shape", [
    (np.zeros((20, 20, 2), np.uint8), (20, 20)),
    (np.zeros((20, 20, 1), np.uint16), (20, 20)),
    (np.ones((20, 20), bool), (20, 20)),
])
def test_to_float_image_shapes(array, shape):
    assert to_float_image(array, "x").shape == shape


def test_to_float_image_refuses_stacks():
    with pytest.raises(DataError, match="stack.tif.*expected"):
        to_float_image(np.zeros((20, 20, 7), np.uint8), "stack.tif")
