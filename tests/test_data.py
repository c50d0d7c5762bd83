"""The data layer, checked against independent facts about Fashion-MNIST."""

import gzip
import hashlib
from collections import Counter

import pytest
import torch
import torch.nn.functional as F

import deepnets.data as data
from deepnets import Batches, DataError, load_fashion_mnist, stratified_subset


def test_sizes_classes_and_balance(fashion):
    # Xiao et al. 2017: 60,000 training and 10,000 test images of 28x28, 10 balanced classes.
    assert fashion.train_images.shape == (60000, 28, 28)
    assert fashion.test_images.shape == (10000, 28, 28)
    assert fashion.train_images.dtype == torch.uint8
    assert torch.bincount(fashion.train_labels).tolist() == [6000] * 10
    assert torch.bincount(fashion.test_labels).tolist() == [1000] * 10
    assert len(fashion.classes) == 10 and fashion.classes[9] == "Ankle boot"


def test_read_idx_matches_a_second_parser(fashion):
    # A second reading of the first image, straight from the idx bytes.
    raw = gzip.open(fashion.folder / "train-images-idx3-ubyte.gz").read()
    assert int.from_bytes(raw[:4], "big") == 2051  # idx magic number for uint8, 3 dims
    first = torch.tensor(list(raw[16:16 + 784]), dtype=torch.uint8).reshape(28, 28)
    assert torch.equal(fashion.train_images[0], first)


def test_checksum_mismatch_names_the_file(tmp_path, fashion):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.open(fashion.folder / path.name).read())
    raw[-1] ^= 1  # one flipped bit in one label
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz has the wrong checksum"):
        data.read_idx(path, data.FILE_SHA256[path.name])


def test_truncated_file_names_the_file_and_what_to_do(tmp_path, fashion):
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    good = (fashion.folder / path.name).read_bytes()
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte.gz is corrupt or truncated.*Delete it"):
        data.read_idx(path, data.FILE_SHA256[path.name])


def test_digests_are_of_the_decompressed_bytes(fashion):
    for name, digest in data.FILE_SHA256.items():
        assert hashlib.sha256(gzip.open(fashion.folder / name).read()).hexdigest() == digest


def test_missing_data_lists_every_way_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv("DEEPNETS_DATA", raising=False)
    monkeypatch.setattr(data, "REPO_DATA", tmp_path / "repo-data")
    monkeypatch.setattr(data, "DEBIAN_DATA", tmp_path / "debian")
    with pytest.raises(DataError) as err:
        data.find_data_dir()
    message = str(err.value)
    for way in ("apt-get install dataset-fashion-mnist", "make data", "DEEPNETS_DATA", "data/"):
        assert way in message


def test_a_named_folder_must_exist(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPNETS_DATA", str(tmp_path / "typo"))
    with pytest.raises(DataError, match="typo.*does not exist"):
        data.find_data_dir()


def test_a_named_folder_missing_a_file_says_which(tmp_path, fashion):
    for name in list(data.FILE_SHA256)[:3]:
        (tmp_path / name).write_bytes((fashion.folder / name).read_bytes())
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz"):
        data.find_data_dir(tmp_path)


def test_search_order_prefers_the_explicit_root(tmp_path, fashion, monkeypatch):
    for name in data.FILE_SHA256:
        (tmp_path / name).symlink_to(fashion.folder / name)
    monkeypatch.setenv("DEEPNETS_DATA", str(fashion.folder))
    assert data.find_data_dir(tmp_path) == tmp_path
    assert data.find_data_dir() == fashion.folder


def test_stratified_subset_is_balanced_and_reproducible(fashion):
    x, y = stratified_subset(fashion.train_images, fashion.train_labels, 37, seed=3)
    assert torch.bincount(y).tolist() == [37] * 10
    x2, y2 = stratified_subset(fashion.train_images, fashion.train_labels, 37, seed=3)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    x3, _ = stratified_subset(fashion.train_images, fashion.train_labels, 37, seed=4)
    assert not torch.equal(x, x3)
    # every picked image really carries the label it was picked for
    rows = {bytes(img.flatten().tolist()): lbl for img, lbl in zip(fashion.train_images, fashion.train_labels.tolist())}
    assert all(rows[bytes(img.flatten().tolist())] == lbl for img, lbl in zip(x[:50], y[:50].tolist()))


def test_subset_larger_than_the_data_says_the_limit(fashion):
    with pytest.raises(ValueError, match="smallest class has only 1000"):
        stratified_subset(fashion.test_images, fashion.test_labels, 1001)
    with pytest.raises(ValueError, match="n_per_class must be a positive int"):
        stratified_subset(fashion.test_images, fashion.test_labels, 0)


def test_shuffling_is_reproducible_and_covers_each_image_once(small):
    x, y = small[0], small[1]
    a = Batches(x, y, batch_size=64, shuffle=True, seed=7, device="cpu")
    b = Batches(x, y, batch_size=64, shuffle=True, seed=7, device="cpu")
    epoch_a1 = torch.cat([yb for _, yb in a])
    epoch_a2 = torch.cat([yb for _, yb in a])
    epoch_b1 = torch.cat([yb for _, yb in b])
    assert torch.equal(epoch_a1, epoch_b1)          # same seed, same order
    assert not torch.equal(epoch_a1, epoch_a2)      # a new order each epoch
    assert torch.equal(epoch_a1.sort().values, y.sort().values)  # each image once
    c = Batches(x, y, batch_size=64, shuffle=True, seed=8, device="cpu")
    assert not torch.equal(epoch_a1, torch.cat([yb for _, yb in c]))


def test_batch_shapes_and_value_range(fashion, small):
    x, y = small[0], small[1]
    batches = Batches(x, y, batch_size=128, device="cpu")
    assert len(batches) == 4 and batches.num_images == 500
    xb, yb = next(iter(batches))
    assert xb.shape == (128, 1, 28, 28) and xb.dtype == torch.float32 and yb.dtype == torch.int64
    lo, hi = (0 - fashion.mean) / fashion.std, (1 - fashion.mean) / fashion.std
    assert xb.min().item() == pytest.approx(lo) and xb.max().item() <= hi + 1e-6
    big = next(iter(Batches(x, y, batch_size=8, size=224, channels=3, device="cpu")))[0]
    assert big.shape == (8, 3, 224, 224)
    assert torch.equal(big[:, 0], big[:, 2])  # grey copied to all three channels


@pytest.mark.parametrize("size", [8, 20, 32, 224, 227])
def test_resize_equals_bilinear_interpolation(small, size):
    # A second computation: torch's own bilinear resize of the same normalised images.
    x, y = small[0][:16], small[1][:16]
    plain = next(iter(Batches(x, y, batch_size=16, device="cpu")))[0]
    resized = next(iter(Batches(x, y, batch_size=16, size=size, device="cpu")))[0]
    expected = F.interpolate(plain, size=(size, size), mode="bilinear", align_corners=False)
    assert resized.shape == (16, 1, size, size)
    torch.testing.assert_close(resized, expected, atol=1e-5, rtol=1e-5)


def test_normalisation_gives_zero_mean_unit_std(fashion):
    # A second computation of the statistics: from the float batches themselves.
    b = Batches(fashion.train_images, fashion.train_labels, batch_size=10000, device="cpu")
    xs = torch.cat([x.flatten() for x, _ in b]).double()
    assert xs.mean().item() == pytest.approx(0, abs=1e-4)
    assert xs.std().item() == pytest.approx(1, abs=1e-4)
    assert fashion.mean == pytest.approx(0.2860, abs=1e-4)  # Fashion-MNIST's known mean
    assert fashion.std == pytest.approx(0.3530, abs=1e-4)
    # The defaults Batches normalises with are these statistics, recomputed from the files: equal to
    # float32 precision (a float32 sum's last digits depend on how many threads added it up).
    assert data.TRAIN_MEAN == pytest.approx(fashion.mean, rel=1e-6)
    assert data.TRAIN_STD == pytest.approx(fashion.std, rel=1e-6)
    exact = fashion.train_images.double().div(255)
    assert data.TRAIN_MEAN == pytest.approx(exact.mean().item(), rel=1e-7)   # and to the float64 mean
    assert data.TRAIN_STD == pytest.approx(exact.std().item(), rel=1e-7)


def test_batches_without_statistics_do_not_load_the_data_set(small, monkeypatch):
    def no_loading(*args, **kwargs):
        raise AssertionError("Batches loaded the whole data set")
    monkeypatch.setattr(data, "load_fashion_mnist", no_loading)
    x, _ = next(iter(Batches(small[0][:4], small[1][:4], device="cpu")))
    expected = (small[0][:4].float() / 255 - data.TRAIN_MEAN) / data.TRAIN_STD
    torch.testing.assert_close(x[:, 0], expected)


def test_augmentation_is_a_shift_and_maybe_a_flip(small):
    x, y = small[0][:64], small[1][:64]
    g = torch.Generator().manual_seed(0)
    out = data.random_crop_flip(x, pad=2, generator=g)
    assert out.shape == x.shape and out.dtype == torch.uint8
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    flips = 0
    for i in range(len(x)):
        windows = [padded[i, dy:dy + 28, dx:dx + 28] for dy in range(5) for dx in range(5)]
        plain = any(torch.equal(out[i], w) for w in windows)
        flipped = any(torch.equal(out[i], w.flip(-1)) for w in windows)
        assert plain or flipped, f"image {i} is not a shifted (flipped) copy"
        flips += flipped and not plain
    assert 10 < flips < 54  # about half are flipped


def test_bad_arguments_get_clear_errors(small):
    x, y = small[0], small[1]
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        Batches(x, y, batch_size=0, device="cpu")
    with pytest.raises(ValueError, match="images but"):
        Batches(x, y[:10], device="cpu")
    with pytest.raises(ValueError, match="channels must be one of 1, 3"):
        Batches(x, y, channels=2, device="cpu")


def test_loading_is_cached():
    assert load_fashion_mnist() is load_fashion_mnist()


def test_validation_split_is_disjoint_stratified_and_fixed(fashion):
    from deepnets import get_profile
    split = fashion.split(get_profile("full"))
    assert len(split.val_labels) == 5_000 and len(split.train_labels) == 55_000
    assert torch.bincount(split.val_labels).tolist() == [500] * 10
    assert torch.bincount(split.train_labels).tolist() == [5_500] * 10
    assert torch.equal(split.test_images, fashion.test_images)
    # Disjoint and complete: every training image lands on exactly one side. Compare the
    # images themselves (each as its 784 bytes, counted), a second computation independent
    # of the indices; a multiset of rows, so an image held twice or lost is caught.
    rows = lambda x: Counter(map(bytes, x.reshape(len(x), -1).numpy()))
    assert rows(split.train_images) + rows(split.val_images) == rows(fashion.train_images)
    again = fashion.split(get_profile("full"))
    assert torch.equal(again.val_images, split.val_images)  # the same split everywhere


def test_smoke_validation_is_part_of_the_full_validation_set(fashion):
    from deepnets import get_profile
    full, smoke = fashion.split(get_profile("full")), fashion.split(get_profile("smoke"))
    assert torch.bincount(smoke.val_labels).tolist() == [20] * 10
    assert torch.bincount(smoke.train_labels).tolist() == [50] * 10
    full_rows = {bytes(x.numpy()) for x in full.val_images}
    assert all(bytes(x.numpy()) in full_rows for x in smoke.val_images)
    assert not any(bytes(x.numpy()) in full_rows for x in smoke.train_images)
    train_x, train_y, val_x, val_y, test_x, test_y = smoke  # unpacks in this order
    assert len(train_x) == 500 and len(val_x) == 200 and len(test_x) == 300
