"""The IDX loader of mnist_digits.data: the real MNIST files, and every kind of bad file giving its one clear error."""
import gzip
import hashlib
import re

import numpy as np
import pytest

# SHA-256 of the decompressed original files (../shared/data/mnist/README.md).
SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}


def idx_bytes(array):
    """Serialise a uint8 array in IDX format, as the original files are."""
    header = (0x800 + array.ndim).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_real_files_shapes_dtypes_and_first_labels(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    assert x_train.shape == (60_000, 28, 28) and x_test.shape == (10_000, 28, 28)
    assert y_train.shape == (60_000,) and y_test.shape == (10_000,)
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    assert y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert abs(x_train.mean() / 255 - 0.1307) < 5e-4 and abs(x_train.std() / 255 - 0.3081) < 5e-4


def test_real_files_read_exactly(idx, mnist):
    """What the loader returns, written back as IDX, has the published checksums: no byte lost or changed."""
    (x_train, y_train), (x_test, y_test) = mnist
    arrays = dict(zip(idx["IDX_FILES"].values(), (x_train, y_train, x_test, y_test)))
    for stem, array in arrays.items():
        assert hashlib.sha256(idx_bytes(array)).hexdigest() == SHA256[stem], stem


@pytest.fixture()
def good_dir(tmp_path, mnist, idx):
    """A folder of the four files, uncompressed, which each test below damages in one way."""
    (x_train, y_train), (x_test, y_test) = mnist
    for stem, array in zip(idx["IDX_FILES"].values(), (x_train, y_train, x_test, y_test)):
        (tmp_path / stem).write_bytes(idx_bytes(array))
    return tmp_path


def test_uncompressed_files_load_the_same(idx, good_dir, mnist):
    loaded = idx["load_mnist_idx"](good_dir)
    for part, expected in zip((*loaded[0], *loaded[1]), (*mnist[0], *mnist[1])):
        assert np.array_equal(part, expected)


def expect_error(idx, folder, file_name, *words):
    with pytest.raises(idx["MnistDataError"]) as caught:
        idx["load_mnist_idx"](folder)
    message = str(caught.value)
    assert "\n" not in message
    assert file_name in message, message
    for word in words:
        assert re.search(word, message), f"{word!r} not in {message!r}"
    return message


def test_missing_folder(idx, tmp_path):
    expect_error(idx, tmp_path / "nowhere", "nowhere", "not a folder")


def test_missing_file(idx, good_dir):
    (good_dir / "t10k-labels-idx1-ubyte").unlink()
    expect_error(idx, good_dir, "t10k-labels-idx1-ubyte", "not found")


def test_empty_file(idx, good_dir):
    (good_dir / "train-labels-idx1-ubyte").write_bytes(b"")
    expect_error(idx, good_dir, "train-labels-idx1-ubyte", "empty")


def test_truncated_file(idx, good_dir):
    path = good_dir / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-784])
    expect_error(idx, good_dir, "train-images-idx3-ubyte", "truncated")


def test_truncated_header(idx, good_dir):
    (good_dir / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03\x00")
    expect_error(idx, good_dir, "t10k-images-idx3-ubyte", "truncated", "header")


def test_truncated_gzip(idx, good_dir):
    raw = (good_dir / "train-labels-idx1-ubyte").read_bytes()
    (good_dir / "train-labels-idx1-ubyte").unlink()
    (good_dir / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(raw)[:500])
    expect_error(idx, good_dir, "train-labels-idx1-ubyte.gz", "cannot read")


def test_not_gzip_despite_its_name(idx, good_dir):
    (good_dir / "t10k-labels-idx1-ubyte").rename(good_dir / "t10k-labels-idx1-ubyte.gz")
    expect_error(idx, good_dir, "t10k-labels-idx1-ubyte.gz", "cannot read")


def test_wrong_file_bad_magic(idx, good_dir):
    """A labels file where the images should be."""
    (good_dir / "t10k-images-idx3-ubyte").write_bytes((good_dir / "t10k-labels-idx1-ubyte").read_bytes())
    expect_error(idx, good_dir, "t10k-images-idx3-ubyte", "magic number 0x00000801", "0x00000803")


def test_trailing_bytes(idx, good_dir):
    path = good_dir / "t10k-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes() + b"\x00")
    expect_error(idx, good_dir, "t10k-labels-idx1-ubyte", "trailing bytes")


def test_partial_data_set(idx, good_dir, mnist):
    """A consistent but smaller training set is not MNIST: the loader refuses it instead of training on it."""
    (x_train, y_train), _ = mnist
    (good_dir / "train-images-idx3-ubyte").write_bytes(idx_bytes(x_train[:1000]))
    (good_dir / "train-labels-idx1-ubyte").write_bytes(idx_bytes(y_train[:1000]))
    expect_error(idx, good_dir, "train-images-idx3-ubyte", r"\(1000, 28, 28\)", "60000")


def test_label_count_disagrees(idx, good_dir, mnist):
    (good_dir / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(mnist[1][1][:9999]))
    expect_error(idx, good_dir, "t10k-labels-idx1-ubyte", "9999 labels for 10000 images")


def test_wrong_image_size(idx, good_dir):
    (good_dir / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((10_000, 28, 27), np.uint8)))
    expect_error(idx, good_dir, "t10k-images-idx3-ubyte", r"\(10000, 28, 27\)")


def test_label_out_of_range(idx, good_dir, mnist):
    labels = mnist[0][1].copy()
    labels[123] = 10
    (good_dir / "train-labels-idx1-ubyte").write_bytes(idx_bytes(labels))
    expect_error(idx, good_dir, "train-labels-idx1-ubyte", "label 10 is outside 0-9")
