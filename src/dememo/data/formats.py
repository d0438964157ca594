"""Decoders for the on-disk formats datasets come in."""

from __future__ import annotations

import gzip
import io
import pickle
import zlib
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from dememo.data.archive import MAX_MEMBER_BYTES, is_hidden, iter_archive_files
from dememo.data.imageset import ImageSet
from dememo.data.release import MANIFEST, expected_files, sha256_bytes
from dememo.errors import DataError
from dememo.progress import progress

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"}
SPLITS = ("train", "test")


# --- IDX (MNIST, Fashion-MNIST) -------------------------------------------------------


MAX_IDX_BYTES = 1 << 30  # 20x Fashion-MNIST's training images


def read_idx(path: Path, max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """Read an IDX file (optionally gzipped) of unsigned bytes.

    The header is read first and the data only up to what it promises (at most
    ``max_bytes``), so a gzip bomb or a lying header never fills memory.
    """
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as handle:
            head = handle.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] != 0x08:
                raise DataError(f"{path}: not an IDX file of unsigned bytes (bad magic number)")
            dims = handle.read(4 * head[3])
            if len(dims) < 4 * head[3]:
                raise DataError(f"{path}: truncated IDX header")
            shape = tuple(int.from_bytes(dims[4 * i : 4 * i + 4], "big") for i in range(head[3]))
            expected = int(np.prod(shape, dtype=np.float64))
            if expected > max_bytes:
                raise DataError(
                    f"{path}: IDX header promises {expected} bytes, above the limit of {max_bytes}"
                )
            raw = handle.read(expected + 1)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path}: cannot read, truncated or corrupt ({error})") from error
    if len(raw) != expected:
        found = f"{len(raw)}" if len(raw) <= expected else "more"
        raise DataError(
            f"{path}: IDX header promises {expected} bytes of data for shape {shape}, file has {found}"
        )
    return np.frombuffer(raw, dtype=np.uint8).reshape(shape)


def idx_imageset(images_path: Path, labels_path: Path, classes: tuple[str, ...], name: str) -> ImageSet:
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3:
        raise DataError(f"{images_path}: expected a 3-d IDX array (N, H, W), got {images.ndim}-d")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(
            f"{labels_path}: {labels.shape[0] if labels.ndim else 0} labels for "
            f"{len(images)} images in {images_path}"
        )
    return ImageSet(
        torch.from_numpy(images.copy()).unsqueeze(1),
        torch.from_numpy(labels.astype(np.int64)),
        classes,
        name,
    )


# --- CIFAR python batches (torchvision's on-disk format) ------------------------------


class _CifarUnpickler(pickle.Unpickler):
    """Unpickler that only rebuilds the plain containers and numpy arrays CIFAR uses."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):  # noqa: D102
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"forbidden global {module}.{name}")
        return super().find_class(module, name)


def read_cifar_batch(path: Path) -> dict:
    """Load one CIFAR python batch file without executing arbitrary pickled code."""
    try:
        with open(path, "rb") as handle:
            batch = _CifarUnpickler(handle, encoding="latin1").load()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except DataError:
        raise
    except Exception as error:  # a damaged pickle fails in many ways; none may escape as a traceback
        raise DataError(f"{path}: not a readable CIFAR batch ({type(error).__name__}: {error})") from error
    if not isinstance(batch, dict):
        raise DataError(f"{path}: expected a dict, got {type(batch).__name__}")
    return batch


def _integer_array(value: object, path: Path, field: str, high: int | None = None) -> np.ndarray:
    """``value`` as an integer array (entries in [0, high] when given); floats are refused."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as error:
        raise DataError(f"{path}: field {field!r} is not an array ({error})") from error
    if array.dtype.kind not in "ui" or array.size == 0:
        raise DataError(f"{path}: field {field!r} must hold integers, found {array.dtype} values")
    if high is not None and (int(array.min()) < 0 or int(array.max()) > high):
        raise DataError(
            f"{path}: field {field!r} has values in [{array.min()}, {array.max()}], expected [0, {high}]"
        )
    return array


def cifar_imageset(files: list[Path], label_key: str, classes: tuple[str, ...], name: str) -> ImageSet:
    images, labels = [], []
    for path in files:
        batch = read_cifar_batch(path)
        if "data" not in batch or label_key not in batch:
            raise DataError(f"{path}: missing field 'data' or {label_key!r}")
        data = _integer_array(batch["data"], path, "data", 255)
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise DataError(f"{path}: field 'data' has shape {data.shape}, expected (N, 3072)")
        batch_labels = _integer_array(batch[label_key], path, label_key)
        if batch_labels.ndim != 1 or len(batch_labels) != len(data):
            raise DataError(f"{path}: {len(batch_labels)} labels for {len(data)} images")
        images.append(data.astype(np.uint8).reshape(-1, 3, 32, 32))
        labels.append(batch_labels.astype(np.int64))
    return ImageSet(
        torch.from_numpy(np.concatenate(images)),
        torch.from_numpy(np.concatenate(labels)),
        classes,
        name,
    )


# --- Image folders (directories or tar archives) ---------------------------------------


MAX_IMAGE_PIXELS = 4096 * 4096  # per image; dataset images are far smaller


def _decode(content: bytes, origin: str, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(content)) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise DataError(
                    f"{origin}: image declares {width}x{height} pixels, above the limit of "
                    f"{max_pixels} pixels per image"
                )
            image.load()
            if image.mode.startswith("I") or image.mode == "F":
                raise DataError(
                    f"{origin}: refused: mode {image.mode} image (16 or 32 bits per channel); dememo "
                    "reads 8-bit images and does not rescale wider ones (clipping would destroy "
                    "them), so convert it to 8 bits per channel first"
                )
            if image.mode not in ("L", "RGB"):
                image = image.convert("RGB")
            array = np.asarray(image, dtype=np.uint8)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError,
            ValueError, EOFError, zlib.error) as error:  # fmt: skip
        raise DataError(f"{origin}: cannot decode image ({error})") from error
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def is_image_name(path: PurePosixPath) -> bool:
    """Image files by suffix; hidden files (``._x.jpg``, ``.DS_Store``) are not images."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not is_hidden(path)


def _split_files(
    files: Iterable[tuple[PurePosixPath, bytes | Path]], origin: Path
) -> dict[str, dict[str, list[tuple[str, bytes | Path]]]]:
    """Group image files as {split: {class: [(name, content)]}} from */split/class/file."""
    splits: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for rel, content in files:
        if not is_image_name(rel):
            continue
        parts = rel.parts
        for i, part in enumerate(parts[:-2]):
            if part in SPLITS and len(parts) - i == 3:
                splits[part][parts[i + 1]].append((str(rel), content))
                break
        else:
            _refuse_stray(rel, origin)
    if "train" not in splits or "test" not in splits:
        raise DataError(
            f"{origin}: expected an image folder with train/<class>/<image> and "
            f"test/<class>/<image>, found splits {sorted(splits) or 'none'}"
        )
    return splits


def _refuse_stray(rel: PurePosixPath, origin: Path) -> None:
    """An image under a split folder but not at <split>/<class>/<image> would be dropped
    without a word: refuse it, naming its folder."""
    parts = rel.parts
    for i, part in enumerate(parts[:-1]):
        if part not in SPLITS:
            continue
        if len(parts) - i == 2:
            raise DataError(
                f"{origin}: {rel} lies directly in {PurePosixPath(*parts[: i + 1])}/, outside any class "
                "folder; move it into a class folder or remove it"
            )
        raise DataError(
            f"{origin}: folder {PurePosixPath(*parts[:-1])}/ is a sub-folder of class folder "
            f"{PurePosixPath(*parts[: i + 2])}/ and holds images (e.g. {parts[-1]}); dememo reads "
            "<split>/<class>/<image> only: move them up into the class folder or remove the sub-folder"
        )


def _read_file(path: Path, source: Path, origin: str) -> bytes:
    if not path.is_file():
        raise DataError(f"{source}:{origin}: not a regular file")
    if path.stat().st_size > MAX_MEMBER_BYTES:
        raise DataError(f"{source}:{origin}: {path.stat().st_size} bytes, above the limit of "
                        f"{MAX_MEMBER_BYTES} bytes for one image")  # fmt: skip
    return path.read_bytes()


def imagefolder_dataset(source: Path, name: str):
    """Decode an ImageFolder-style directory or tar archive into a Dataset."""
    from dememo.data.imageset import Dataset

    source = Path(source)
    if source.is_dir():
        files = ((PurePosixPath(p.relative_to(source).as_posix()), p) for p in sorted(source.rglob("*")))
    elif source.is_file():
        files = iter_archive_files(source, wanted=is_image_name)
    else:
        raise DataError(f"{source}: no such image folder or archive")
    expected = expected_files(source) if source.is_dir() else None  # a dememo release: check its hashes
    splits = _split_files(files, source)
    classes = tuple(sorted(splits["train"]))
    test_classes = tuple(sorted(splits["test"]))
    if classes != test_classes:
        raise DataError(f"{source}: train classes {classes} differ from test classes {test_classes}")
    sets = {}
    for split in ("train", "test"):
        members = [
            (label, origin, content)
            for label, cls in enumerate(classes)
            for origin, content in sorted(splits[split][cls], key=lambda item: item[0])
        ]
        arrays, labels, shape, first = [], [], None, None
        for label, origin, content in progress(members, f"decoding {name} {split}"):
            data = _read_file(content, source, origin) if isinstance(content, Path) else content
            if expected is not None:
                _check_release_file(source, origin, data, expected)
            array = _decode(data, f"{source}:{origin}")
            if shape is None:
                shape, first = array.shape, origin
            elif array.shape != shape:
                raise DataError(
                    f"{source}:{origin}: image is {array.shape[1]}x{array.shape[2]}x{array.shape[0]} "
                    f"but {first} is {shape[1]}x{shape[2]}x{shape[0]}; all images must share one "
                    "size and channel count"
                )
            arrays.append(array)
            labels.append(label)
        sets[split] = ImageSet(
            torch.from_numpy(np.stack(arrays)),
            torch.tensor(labels, dtype=torch.int64),
            classes,
            f"{name}/{split}",
        )
    if expected is not None:
        read = {origin for split in splits.values() for cls in split.values() for origin, _ in cls}
        missing = sorted(set(expected) - read)
        if missing:
            raise DataError(
                f"{source}: {len(missing)} file(s) of the release listed in {MANIFEST} are missing "
                f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}); "
                f"run 'dememo verify {source}'"
            )
    return Dataset(name, sets["train"], sets["test"])


def _check_release_file(source: Path, origin: str, data: bytes, expected: dict[str, str]) -> None:
    """Refuse a file of a dememo release that was added or changed after the export."""
    if origin not in expected:
        raise DataError(f"{source}:{origin}: not in the release's {MANIFEST} (added after the export); "
                        f"run 'dememo verify {source}'")  # fmt: skip
    if sha256_bytes(data) != expected[origin]:
        raise DataError(
            f"{source}:{origin}: changed after the export (its SHA-256 does not match the release's "
            f"{MANIFEST}); run 'dememo verify {source}'"
        )
