"""Fashion-MNIST in memory, and batches sliced, augmented and resized on the tensor.

The whole data set is 70,000 images of 28x28 bytes (55 MB), so we keep it as uint8
tensors and build each batch with a handful of tensor operations. That is the fast path
on a CPU: no per-image PIL conversion, no worker processes (see `python -m deepnets.bench`).
"""

from __future__ import annotations

import argparse
import functools
import gzip
import hashlib
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from deepnets import checks
from deepnets.checks import DataError
from deepnets.files import REPO

if TYPE_CHECKING:
    from deepnets.profiles import Profile

CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

# SHA-256 of the *decompressed* idx files. Debian's package recompressed the .gz files, so
# their compressed digests differ from upstream's; the decompressed bytes are identical.
FILE_SHA256 = {
    "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}

REPO_DATA = REPO / "data"

# Fashion-MNIST's training-set statistics (the 60,000 training images scaled to [0, 1]):
# Batches normalises with them unless given others, so that building batches never loads
# the whole data set. tests/test_data.py recomputes both from the files. Fixed constants, because
# a float32 sum's last digits depend on the thread count that added it up (2e-8 here), and a
# difference that small still changes every later digit of a training run.
TRAIN_MEAN = 0.2860405743122101
TRAIN_STD = 0.3530242443084717
DEBIAN_DATA = Path("/usr/share/datasets/fashion-mnist")

HOW_TO_GET_DATA = """\
Ways to get Fashion-MNIST (any one is enough):
  - Debian/Ubuntu, as root:  apt-get install dataset-fashion-mnist
  - with internet, no root:   make data   (or: python -m deepnets.data --download)
  - files you already have:   put the four idx .gz files in data/, or set
                              DEEPNETS_DATA=/path/to/folder, or pass root=... """


def candidate_dirs(root: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    """The folders searched for the data, in order, each with where it came from."""
    dirs = []
    if root is not None:
        dirs.append(("root argument", Path(root)))
    if os.environ.get("DEEPNETS_DATA"):
        dirs.append(("$DEEPNETS_DATA", Path(os.environ["DEEPNETS_DATA"])))
    dirs.append(("repository data/", REPO_DATA))
    dirs.append(("Debian package", DEBIAN_DATA))
    return dirs


def find_data_dir(root: str | os.PathLike | None = None, download: bool = False) -> Path:
    """The first folder that holds all four files; downloads into data/ if allowed."""
    searched = []
    for origin, folder in candidate_dirs(root):
        missing = [name for name in FILE_SHA256 if not (folder / name).is_file()]
        if not missing:
            unreadable = [name for name in FILE_SHA256 if not os.access(folder / name, os.R_OK)]
            if unreadable or not os.access(folder, os.R_OK | os.X_OK):
                raise DataError(f"The data folder {folder} (from the {origin}) holds the files but "
                                f"you may not read {', '.join(unreadable) or 'the folder'}. Give "
                                f"yourself read permission (chmod -R a+rX {folder}) or use another copy.")
            return folder
        if origin in ("root argument", "$DEEPNETS_DATA"):
            # A folder the user named must hold the data: a typo should not silently
            # fall through to some other copy of it.
            if folder.exists() and not folder.is_dir():
                raise DataError(f"The data folder {folder} (from the {origin}) is a file, not a folder. "
                                f"Set it to the folder that holds the four .gz files.\n{HOW_TO_GET_DATA}")
            if folder.is_dir() and not os.access(folder, os.R_OK | os.X_OK):
                raise DataError(f"The data folder {folder} (from the {origin}) cannot be read: you lack "
                                f"permission. Give yourself read permission (chmod -R a+rX {folder}) "
                                f"or point it at another copy.")
            if not folder.is_dir():
                raise DataError(f"The data folder {folder} (from the {origin}) does not exist. "
                                f"Fix the path, or unset it to use the default places.\n{HOW_TO_GET_DATA}")
            raise DataError(f"The data folder {folder} (from the {origin}) lacks "
                            f"{', '.join(missing)}.\n{HOW_TO_GET_DATA}")
        searched.append(f"  {folder}  ({origin})")
    if download:
        download_fashion_mnist(REPO_DATA)
        return REPO_DATA
    raise DataError("Fashion-MNIST not found. Looked for the four idx .gz files in:\n"
                    + "\n".join(searched) + "\n" + HOW_TO_GET_DATA)


def download_fashion_mnist(folder: Path = REPO_DATA) -> None:
    """Download the four files from torchvision's mirrors (needs internet)."""
    from torchvision.datasets import FashionMNIST as TVFashionMNIST
    from torchvision.datasets.utils import download_url

    folder.mkdir(parents=True, exist_ok=True)
    for filename, md5 in TVFashionMNIST.resources:
        if (folder / filename).is_file():
            continue
        errors = []
        for mirror in TVFashionMNIST.mirrors:
            try:
                download_url(mirror + filename, root=str(folder), filename=filename, md5=md5)
                break
            except Exception as e:  # noqa: BLE001 -- try the next mirror, report all at the end
                errors.append(f"{mirror}: {e}")
        else:
            raise DataError(f"Could not download {filename}:\n  " + "\n  ".join(errors)
                            + f"\n{HOW_TO_GET_DATA}")


def read_idx(path: Path, expected_sha256: str | None = None) -> torch.Tensor:
    """Read one gzipped idx file into a uint8 tensor, checking its decompressed digest."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except PermissionError as e:
        raise DataError(f"{path} cannot be read: you lack permission. Give yourself read permission "
                        f"(chmod a+r {path}) or use another copy.") from e
    except (OSError, EOFError) as e:
        raise DataError(f"{path} is corrupt or truncated ({e}). Delete it and get the data "
                        f"again.\n{HOW_TO_GET_DATA}") from e
    if expected_sha256 is not None and hashlib.sha256(raw).hexdigest() != expected_sha256:
        raise DataError(f"{path} has the wrong checksum: it is not the Fashion-MNIST file it "
                        f"is named after, or it is damaged. Delete it and get the data "
                        f"again.\n{HOW_TO_GET_DATA}")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    return torch.frombuffer(bytearray(raw[offset:]), dtype=torch.uint8).reshape(dims)


@dataclass(frozen=True)
class FashionMNIST:
    """The whole data set as uint8 images [N, 28, 28] and int64 labels [N]."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    classes: tuple[str, ...]
    mean: float  # of the training pixels scaled to [0, 1]
    std: float
    folder: Path

    def split(self, profile: Profile) -> Split:
        """The course's one train/validation/test split, at the sizes a profile asks for.

        The validation images are held out of the 60,000 training images (500 per class,
        the same ones in every notebook and profile); every choice of a recipe is made on
        them, and the test images are looked at once, at the end of a final run.
        """
        train_x, train_y, val_x, val_y = train_val_split(self.train_images, self.train_labels)
        if profile.val_per_class is not None and profile.val_per_class < VAL_PER_CLASS:
            # the first n of each class: a smoke run validates on part of the same held-out set
            keep = torch.cat([torch.nonzero(val_y == c).squeeze(1)[:profile.val_per_class]
                              for c in range(len(self.classes))]).sort().values
            val_x, val_y = val_x[keep], val_y[keep]
        train_x, train_y = stratified_subset(train_x, train_y, profile.train_per_class)
        test_x, test_y = stratified_subset(self.test_images, self.test_labels, profile.test_per_class)
        return Split(train_x, train_y, val_x, val_y, test_x, test_y)


@dataclass(frozen=True)
class Split:
    """Training, validation and test images (uint8 [N, 28, 28]) and labels (int64 [N])."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor

    def __iter__(self) -> Iterator[torch.Tensor]:
        """Unpacks as train_x, train_y, val_x, val_y, test_x, test_y."""
        return iter((self.train_images, self.train_labels, self.val_images, self.val_labels,
                     self.test_images, self.test_labels))


# 500 images of each class, drawn with this fixed seed, are the validation set everywhere.
VAL_PER_CLASS = 500
VAL_SEED = 2012


def train_val_split(images: torch.Tensor, labels: torch.Tensor, val_per_class: int = VAL_PER_CLASS,
                    seed: int = VAL_SEED) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Hold out `val_per_class` images of every class: (train_x, train_y, val_x, val_y), disjoint."""
    _check_pair(images, labels)
    checks.positive_int("val_per_class", val_per_class)
    checks.non_negative_int("seed", seed)
    _check_enough(labels, val_per_class, "val_per_class", keep_one=True)
    held_out = torch.zeros(len(images), dtype=torch.bool)
    held_out[_stratified_index(labels, val_per_class, seed)] = True
    return images[~held_out], labels[~held_out], images[held_out], labels[held_out]


def _check_pair(images: torch.Tensor, labels: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor):
        raise checks.ArgumentTypeError(f"images must be a torch.Tensor, got {type(images).__name__}. "
                                       f"Pass the uint8 images of load_fashion_mnist() or a slice of them.")
    checks.labels("labels", labels)
    if len(images) != len(labels):
        raise checks.InputError(f"{len(images)} images but {len(labels)} labels: pass one label per image.")
    if len(labels) == 0:
        raise checks.EmptyDataError("images and labels are empty (0 images). Pass at least one image "
                                    "of each class.")


def _check_enough(labels: torch.Tensor, n: int, name: str, keep_one: bool = False) -> None:
    counts = torch.bincount(labels)
    present = counts[counts > 0]
    if len(present) < 2:
        raise checks.EmptyDataError(f"labels hold a single class ({int(labels[0])}), so there is nothing "
                                    f"to stratify by {name}. Pass images of at least two classes.")
    smallest = int(present.min()) - (1 if keep_one else 0)
    if n > smallest:
        raise checks.ArgumentValueError(
            f"Asked for {name}={n} images per class, but the smallest class has only {smallest}"
            f"{' to spare' if keep_one else ''}. Use at most that" + ("." if keep_one else ", or None for all."))


@functools.lru_cache(maxsize=4)
def load_fashion_mnist(root: str | None = None, download: bool = False) -> FashionMNIST:
    """Load Fashion-MNIST (found as `find_data_dir` describes) into memory, verified."""
    folder = find_data_dir(root, download)
    t = {name: read_idx(folder / name, digest) for name, digest in FILE_SHA256.items()}
    train_images = t["train-images-idx3-ubyte.gz"]
    scaled = train_images.float() / 255
    return FashionMNIST(
        train_images=train_images,
        train_labels=t["train-labels-idx1-ubyte.gz"].long(),
        test_images=t["t10k-images-idx3-ubyte.gz"],
        test_labels=t["t10k-labels-idx1-ubyte.gz"].long(),
        classes=CLASSES,
        mean=scaled.mean().item(),
        std=scaled.std().item(),
        folder=folder,
    )


def stratified_subset(images: torch.Tensor, labels: torch.Tensor, n_per_class: int | None,
                      seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """n images of every class, drawn at random with a fixed seed; None keeps everything."""
    _check_pair(images, labels)
    checks.non_negative_int("seed", seed)
    if n_per_class is None:
        return images, labels
    checks.positive_int("n_per_class", n_per_class, fix="Pass None to keep every image.")
    _check_enough(labels, n_per_class, "n_per_class")
    index = _stratified_index(labels, n_per_class, seed)
    return images[index], labels[index]


def _stratified_index(labels: torch.Tensor, n_per_class: int, seed: int) -> torch.Tensor:
    """Sorted indices of n random members of every class (fixed seed)."""
    g = torch.Generator().manual_seed(seed)
    picks = []
    for c in range(len(torch.bincount(labels))):
        members = torch.nonzero(labels == c).squeeze(1)
        if len(members) == 0:  # a class missing from this slice has nothing to draw
            continue
        picks.append(members[torch.randperm(len(members), generator=g)[:n_per_class]])
    return torch.cat(picks).sort().values


def random_crop_flip(images: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Pad each image with zeros, cut a random window of the original size, flip half.

    With `pad=0` the window is the image itself: flips only.
    """
    b, h, w = images.shape
    padded = F.pad(images, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(images.device)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(images.device)
    rows = (torch.arange(h, device=images.device) + dy[:, None])[:, :, None]  # [B, H, 1]
    cols = (torch.arange(w, device=images.device) + dx[:, None])[:, None, :]  # [B, 1, W]
    cropped = padded[torch.arange(b, device=images.device)[:, None, None], rows, cols]
    flip = (torch.rand(b, generator=generator) < 0.5).to(images.device)
    return torch.where(flip[:, None, None], cropped.flip(-1), cropped)


def resize_matrix(size_in: int, size_out: int) -> torch.Tensor:
    """[size_out, size_in] matrix M of bilinear resizing along one axis (align_corners=False).

    Bilinear resizing is linear and separable: image -> M @ image @ M.T. We read M off
    `F.interpolate` by resizing the identity, so it means exactly what interpolate means.
    """
    eye = torch.eye(size_in).unsqueeze(0)                        # [1, size_in, size_in]
    return F.interpolate(eye, size=size_out, mode="linear", align_corners=False)[0].T.contiguous()


class Batches:
    """Mini-batches of (normalised float images [B, C, H, W], labels [B]) from uint8 tensors.

    Everything happens batch-wise on `device`: slicing, uint8 -> float, augmentation
    (random crop with zero padding + horizontal flip), resizing, normalisation.
    Shuffling and augmentation draw from one seeded generator, so epoch k is the same
    in every run with the same seed (and after resuming from a checkpoint).

    Normalisation subtracts `mean` and divides by `std`, both in [0, 1] pixel units. Left
    out, they are Fashion-MNIST's training-set statistics (`TRAIN_MEAN`, `TRAIN_STD`); pass
    your own for other images, e.g. `images.float().div(255).mean()`.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 128,
                 shuffle: bool = False, seed: int = 0, size: int | None = None,
                 augment: bool = False, pad: int = 2, channels: int = 1,
                 device: str | torch.device | None = None,
                 mean: float | None = None, std: float | None = None) -> None:
        """Batches of `batch_size` from uint8 `images` [N, H, W] and their `labels` [N];
        `size` resizes (bilinear), `channels=3` copies grey to RGB, `augment` crops and flips."""
        checks.images("images", images, dtype=torch.uint8, dims=3, model="Batches")
        checks.labels("labels", labels, count=len(images))
        checks.positive_int("batch_size", batch_size)
        checks.non_negative_int("seed", seed)
        checks.one_of("channels", channels, (1, 3), fix="Pass 1 (grey) or 3 (grey copied to RGB).")
        if size is not None:
            checks.positive_int("size", size, fix="Pass None to keep the images' own size.")
            if size < 8:
                raise checks.ArgumentValueError(f"size must be at least 8 pixels or None, got {size}. "
                                                f"Pass a larger size, or None to keep 28x28.")
        if augment:
            checks.non_negative_int("pad", pad, fix="Pass 0 for flips only.")
        for name, value in (("mean", mean), ("std", std)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise checks.ArgumentTypeError(f"{name} must be a number in pixel units of [0, 1], got "
                                               f"{value!r}. Pass a float such as {TRAIN_MEAN:.4f}, or None.")
        if std is not None and not std > 0:
            raise checks.ArgumentValueError(f"std must be positive, got {std!r}: normalising divides by it. "
                                            f"Pass the images' standard deviation, or None.")
        side = size if size is not None else max(images.shape[1:])
        checks.fits_in_memory("batch_size or size", 4 * batch_size * channels * side * side,
                              f"One batch of {batch_size} float images of {channels}x{side}x{side}")
        if device is None:
            from deepnets.train import get_device
            device = get_device()
        self.device = torch.device(device)
        self.images = images.to(self.device)
        self.labels = labels.to(self.device)
        self.batch_size = batch_size
        self.shuffle, self.augment, self.pad = shuffle, augment, pad
        self.size, self.channels = size, channels
        # Bilinear resizing as two small matrix products (rows @ x @ cols): the same numbers
        # as F.interpolate (tested), faster on a CPU (python -m deepnets.bench measures it).
        # Crops keep the image size, so the two matrices are built once, here.
        h, w = images.shape[1:]
        self.resize_matrices: tuple[torch.Tensor, torch.Tensor] | None = None
        if size is not None and (size, size) != (h, w):
            self.resize_matrices = (resize_matrix(h, size).to(self.device),
                                    resize_matrix(w, size).T.to(self.device))
        self.mean = float(TRAIN_MEAN if mean is None else mean)
        self.std = float(TRAIN_STD if std is None else std)
        self.generator = torch.Generator().manual_seed(seed)

    @property
    def resize(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Deprecated name of `resize_matrices`."""
        warnings.warn("Batches.resize is now Batches.resize_matrices (it holds the two matrices).",
                      DeprecationWarning, stacklevel=2)
        return self.resize_matrices

    @property
    def num_images(self) -> int:
        """How many images one epoch yields."""
        return len(self.images)

    def __len__(self) -> int:
        return (len(self.images) + self.batch_size - 1) // self.batch_size

    def state_dict(self) -> dict[str, Any]:
        """The random generator's state, to resume an interrupted run exactly."""
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` saved."""
        self.generator.set_state(state["generator"])

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.images)
        order = torch.randperm(n, generator=self.generator).to(self.device) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            index = order[start:start + self.batch_size] if order is not None else slice(start, start + self.batch_size)
            x, y = self.images[index], self.labels[index]
            if self.augment:
                x = random_crop_flip(x, self.pad, self.generator)
            yield self.model_input(x), y

    def model_input(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 [B, H, W] -> what a model takes: float [B, C, size, size], normalised,
        resized to `size` and copied to `channels`, in channels_last memory order."""
        x = x.float().div_(255).sub_(self.mean).div_(self.std)
        if self.resize_matrices is not None:
            rows, cols = self.resize_matrices
            x = rows @ x @ cols
        x = x.unsqueeze(1)
        if self.channels == 3:
            x = x.expand(-1, 3, -1, -1)
        return x.contiguous(memory_format=torch.channels_last)

    def to_float(self, x: torch.Tensor) -> torch.Tensor:
        """Deprecated name of `model_input` (which also resizes and copies channels)."""
        warnings.warn("Batches.to_float is now Batches.model_input: it also resizes and copies channels.",
                      DeprecationWarning, stacklevel=2)
        return self.model_input(x)


def __getattr__(name: str) -> Any:
    # Old names, kept for one release.
    if name == "FILES":
        warnings.warn("deepnets.data.FILES is now FILE_SHA256 (it holds each file's checksum).",
                      DeprecationWarning, stacklevel=2)
        return FILE_SHA256
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """`python -m deepnets.data [--download]`: find (or fetch) the data and describe it."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--download", action="store_true", help="download into data/ if not found")
    parser.add_argument("--root", default=None, help="a folder holding the four .gz files")
    args = parser.parse_args()
    try:
        ds = load_fashion_mnist(args.root, download=args.download)
    except DataError as e:
        raise SystemExit(str(e)) from None
    print(f"Fashion-MNIST in {ds.folder}: {len(ds.train_images)} train / {len(ds.test_images)} "
          f"test images, checksums verified; pixel mean {ds.mean:.4f}, std {ds.std:.4f}")


if __name__ == "__main__":
    main()
