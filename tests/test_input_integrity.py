"""Untrusted inputs: truncated or corrupt archives, resource bombs, hidden files,
mistyped CIFAR batches, incomplete folders and a damaged decoded cache."""

from __future__ import annotations

import io
import os
import pickle
import struct
import tarfile
import time
import zlib

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from dememo.data import load_dataset
from dememo.data.archive import iter_archive_files
from dememo.data.cache import cached_dataset
from dememo.data.formats import imagefolder_dataset, read_idx
from dememo.errors import DataError
from tests.fixtures import image_tree, png_bytes, write_cifar10_batches, write_fashion, write_image_dir


def plain_tar(path, members: dict[str, bytes]):
    with tarfile.open(path, "w") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return path


def tree_members(tree: dict, prefix: str = "set") -> dict[str, bytes]:
    return {f"{prefix}/{rel}": png_bytes(array) for rel, array in tree.items()}


def test_plain_tar_cut_at_a_member_boundary_is_not_a_smaller_dataset(tmp_path):
    path = plain_tar(tmp_path / "set.tar", tree_members(image_tree(per_class=4)))
    with tarfile.open(path) as tar:
        cut = tar.getmembers()[5].offset  # a header boundary: tarfile alone sees a clean end
    path.write_bytes(path.read_bytes()[:cut])
    with pytest.raises(DataError, match="set.tar: truncated or corrupt archive"):
        imagefolder_dataset(path, "set")


@pytest.mark.parametrize("member", [3, 12])
def test_corrupt_header_mid_archive_is_named(tmp_path, member):
    path = plain_tar(tmp_path / "set.tar", tree_members(image_tree(per_class=4)))
    with tarfile.open(path) as tar:
        offset = tar.getmembers()[member].offset
    blob = bytearray(path.read_bytes())
    blob[offset + 3] ^= 0x55  # a byte of the member name: the header checksum no longer fits
    path.write_bytes(bytes(blob))
    with pytest.raises(DataError, match="truncated or corrupt archive"):
        imagefolder_dataset(path, "set")


def test_member_size_is_capped_before_reading(tmp_path):
    path = tmp_path / "big.tar.gz"
    members = tree_members(image_tree()) | {"set/train/cat/big.png": bytes(3 << 20)}
    with tarfile.open(path, "w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    with pytest.raises(DataError, match="big.png' claims 3145728 bytes, above the limit"):
        list(iter_archive_files(path, max_member_bytes=1 << 20))


def test_header_claiming_50_gib_is_refused_without_reading(tmp_path):
    info = tarfile.TarInfo("set/train/cat/huge.png")
    info.size = 50 << 30
    path = tmp_path / "lying.tar"
    path.write_bytes(info.tobuf(format=tarfile.GNU_FORMAT) + bytes(4096))
    with pytest.raises(DataError, match="above the limit"):
        imagefolder_dataset(path, "lying")


def test_non_image_members_are_skipped_unread_but_the_archive_is_still_checked(tmp_path):
    members = tree_members(image_tree()) | {"set/README.txt": b"x" * 5000}
    path = plain_tar(tmp_path / "set.tar", members)
    seen = [str(p) for p, _ in iter_archive_files(path, wanted=lambda p: p.suffix == ".png")]
    assert "set/README.txt" not in seen and len(seen) == 12
    info = tarfile.TarInfo("set/notes.bin")
    info.size = 50 << 30  # not wanted, so never read; the archive then ends early
    source = plain_tar(tmp_path / "x.tar", tree_members(image_tree()))
    with tarfile.open(source) as tar:
        tar.getmembers()
        end = tar.offset  # where the end-of-archive blocks start
    path.write_bytes(source.read_bytes()[:end] + info.tobuf(format=tarfile.GNU_FORMAT))
    with pytest.raises(DataError, match="truncated or corrupt archive"):
        imagefolder_dataset(path, "set")


def huge_png(width: int, height: int) -> bytes:
    """A valid 1x1 PNG whose IHDR is rewritten to declare ``width`` x ``height`` pixels."""
    blob = bytearray(png_bytes(np.zeros((1, 1, 3), dtype=np.uint8)))
    blob[16:24] = struct.pack(">II", width, height)
    blob[29:33] = struct.pack(">I", zlib.crc32(bytes(blob[12:29])))
    return bytes(blob)


@pytest.mark.parametrize("size", [(30000, 30000), (5000, 5000)])
def test_decompression_bomb_is_a_clear_error(tmp_path, size):
    root = write_image_dir(tmp_path / "set", image_tree())
    (root / "train/cat/000.png").write_bytes(huge_png(*size))
    with pytest.raises(DataError, match="train/cat/000.png: .*(pixels|decompression bomb)"):
        imagefolder_dataset(root, "set")


def test_hidden_files_are_ignored_in_folders_and_archives(tmp_path):
    tree = image_tree()
    root = write_image_dir(tmp_path / "set", tree)
    for junk in ("train/cat/._000.png", "train/.DS_Store", "test/dog/._001.jpg"):
        (root / junk).write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    data = imagefolder_dataset(root, "set")
    assert len(data.train) == 6 and data.train.classes == ("cat", "dog")
    extra = {"set/train/cat/._000.png": b"junk", "set/.DS_Store": b"junk", "__MACOSX/set/train/x.png": b"j"}
    path = plain_tar(tmp_path / "set.tar", tree_members(tree) | extra)
    assert torch.equal(imagefolder_dataset(path, "set").train.images, data.train.images)


@pytest.mark.parametrize("field", ["data", "labels"])
def test_cifar_batches_with_float_fields_are_rejected(tmp_path, field):
    write_cifar10_batches(tmp_path)
    batch_path = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    batch = pickle.loads(batch_path.read_bytes())
    batch[field] = np.asarray(batch[field], dtype=np.float32) + 0.5
    batch_path.write_bytes(pickle.dumps(batch))
    with pytest.raises(DataError, match=f"data_batch_2: field '{field}' must hold integers"):
        load_dataset("cifar10", tmp_path)


def test_idx_gzip_bomb_is_refused_from_its_header(tmp_path):
    path = tmp_path / "bomb-idx3-ubyte.gz"
    import gzip

    with gzip.open(path, "wb") as handle:
        handle.write(bytes([0, 0, 8, 3]) + struct.pack(">III", 60000, 1000, 1000))
    with pytest.raises(DataError, match="promises 60000000000 bytes, above the limit"):
        read_idx(path)


def test_incomplete_fashion_folder_does_not_fall_back_silently(tmp_path):
    write_fashion(tmp_path / "fashion-mnist")
    (tmp_path / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="fashion-mnist .*lacks t10k-labels-idx1-ubyte"):
        load_dataset("fashion-mnist", tmp_path)


# --- the decoded cache ------------------------------------------------------------------


@pytest.fixture
def cached(tmp_path):
    source = write_image_dir(tmp_path / "src", image_tree())
    calls = []

    def load():
        def build():
            calls.append(1)
            return imagefolder_dataset(source, "set")

        return cached_dataset(tmp_path / "cache", "set", [source], build)

    expected = load()
    (entry,) = (tmp_path / "cache").glob("set-*")
    return load, expected, entry, calls


def damage_truncate(entry):
    blob = (entry / "data.safetensors").read_bytes()
    (entry / "data.safetensors").write_bytes(blob[: len(blob) // 2])


def damage_meta(entry):
    (entry / "meta.json").write_text('["not", "an", "object"]')


def damage_pixel(entry):
    tensors = load_file(entry / "data.safetensors")
    tensors["train_images"][0, 0, 0, 0] ^= 0xFF
    save_file(tensors, entry / "data.safetensors")


def damage_classes(entry):
    meta = (entry / "meta.json").read_text().replace('"cat"', '"cow"')
    (entry / "meta.json").write_text(meta)


@pytest.mark.parametrize("damage", [damage_truncate, damage_meta, damage_pixel, damage_classes])
def test_damaged_cache_entry_is_rebuilt_with_a_notice(cached, damage, capsys):
    load, expected, entry, calls = cached
    damage(entry)
    rebuilt = load()
    assert len(calls) == 2
    assert "is damaged" in capsys.readouterr().err
    assert torch.equal(rebuilt.train.images, expected.train.images)
    assert rebuilt.train.classes == ("cat", "dog")
    load()
    assert len(calls) == 2  # the rebuilt entry is good again


def test_source_rewritten_with_same_size_and_mtime_is_not_served_stale(tmp_path):
    source = write_image_dir(tmp_path / "src", image_tree())
    target = source / "train/cat/000.png"
    load = lambda: cached_dataset(tmp_path / "cache", "s", [source], lambda: imagefolder_dataset(source, "s"))  # noqa: E731
    before = load()
    time.sleep(0.05)  # ctime has a clock-tick granularity
    stat = target.stat()
    new = png_bytes(np.full((8, 8, 3), 7, dtype=np.uint8))
    assert len(new) <= stat.st_size
    target.write_bytes(new + bytes(stat.st_size - len(new)))  # PNG ignores trailing bytes
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    after = load()
    assert not torch.equal(after.train.images, before.train.images)
    assert int(after.train.images[0].max()) == 7 and len(Image.open(target).getbands()) == 3


# --- images that would be read wrong or dropped without a word ------------------------------------------


def test_a_16_bit_png_is_refused_not_clipped(tmp_path):
    root = write_image_dir(tmp_path / "set", image_tree())
    deep = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).astype(np.uint16)  # 98% above 255
    buffer = io.BytesIO()
    Image.fromarray(deep).save(buffer, format="PNG")
    (root / "train" / "cat" / "001.png").write_bytes(buffer.getvalue())
    with pytest.raises(DataError, match=r"train/cat/001.png: refused: mode I;16 image") as error:
        load_dataset("imagefolder", root)
    assert "\n" not in str(error.value) and "8 bits per channel" in str(error.value)


@pytest.mark.parametrize(
    ("stray", "message"),
    [
        ("train/cat/sub/x.png", "folder {p}train/cat/sub/ is a sub-folder of class folder {p}train/cat/"),
        ("test/dog/a/b/x.png", "folder {p}test/dog/a/b/ is a sub-folder of class folder {p}test/dog/"),
        ("train/x.png", "{p}train/x.png lies directly in {p}train/, outside any class folder"),
    ],
)
def test_images_outside_split_class_image_are_refused_not_dropped(tmp_path, stray, message):
    root = write_image_dir(tmp_path / "set", image_tree())
    (root / stray).parent.mkdir(parents=True, exist_ok=True)
    (root / stray).write_bytes(png_bytes(np.zeros((8, 8, 3), dtype=np.uint8)))
    with pytest.raises(DataError, match=message.format(p="")):
        load_dataset("imagefolder", root)
    extra = {f"set/{stray}": png_bytes(np.zeros((8, 8, 3), dtype=np.uint8))}
    archive = plain_tar(tmp_path / "set.tar", tree_members(image_tree()) | extra)
    with pytest.raises(DataError, match=message.format(p="set/")):
        imagefolder_dataset(archive, "set")


# --- output locations, a full disk and the results database (part B of the hostile-input probe) ---


def _mount(*args: str) -> bool:
    """Run mount (as root, where the kernel lets us); False when it cannot."""
    import subprocess

    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", *args], capture_output=True, check=False).returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    """A 64 KiB tmpfs: a disk that fills after a few writes."""
    folder = tmp_path / "disk"
    folder.mkdir()
    if not _mount("-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)):
        pytest.skip("cannot mount a small tmpfs (needs root and a kernel that allows it)")
    yield folder
    _mount_undo(folder)


def _mount_undo(folder):
    import subprocess

    subprocess.run(["umount", str(folder)], capture_output=True, check=False)


def test_a_full_disk_is_one_line_naming_the_path_and_the_rerun_resumes(small_disk):
    from dememo.errors import StorageError
    from dememo.experiments.results import ResultsDB
    from dememo.store import ArtifactStore

    store = ArtifactStore(small_disk / "store")
    tensors = {"w": torch.zeros(100_000)}  # 400 kB: more than the disk holds
    with pytest.raises(
        StorageError, match=r"store/model/[0-9a-f]{16}: cannot write it: No space left on device"
    ):
        store.save("model", {"a": 1}, tensors)
    assert list((small_disk / "store" / "model").iterdir()) == []  # no half-written artifact, no leftovers
    (small_disk / "filler").write_bytes(b"x" * 60_000)  # the disk is (nearly) full
    with pytest.raises(StorageError, match=r"results.sqlite: cannot"):
        ResultsDB.in_directory(small_disk / "results")
    assert not (small_disk / "results" / "results.sqlite").exists()  # never a half-made database
    assert [p.name for p in (small_disk / "results").iterdir()] == []
    (small_disk / "filler").unlink()
    assert _mount("-o", "remount,size=4m", str(small_disk))
    saved = store.save("model", {"a": 1}, tensors)  # the rerun, once there is space
    assert store.load("model", {"a": 1}) is not None and saved.path.is_dir()
    ResultsDB.in_directory(small_disk / "results").close()


def test_a_half_created_results_database_is_made_again_not_refused_forever(tmp_path):
    import sqlite3

    from dememo.experiments.results import ResultsDB

    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "results.sqlite").write_bytes(b"")  # the file created, the schema never written
    ResultsDB.in_directory(tmp_path / "empty").close()
    (tmp_path / "partial").mkdir()
    db = sqlite3.connect(tmp_path / "partial" / "results.sqlite")  # an older dememo stopped mid-schema
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.commit()
    db.close()
    ResultsDB.in_directory(tmp_path / "partial").close()
    assert ResultsDB.in_directory(tmp_path / "partial", create=False).rows() == []


def test_readers_never_write_the_results_database(tmp_path):
    import sqlite3

    from typer.testing import CliRunner

    from dememo.cli import app
    from dememo.experiments.results import ResultsDB

    runner = CliRunner()
    ResultsDB.in_directory(tmp_path / "r").close()
    db_file = tmp_path / "r" / "results.sqlite"
    db = sqlite3.connect(db_file)
    db.execute("ALTER TABLE runs DROP COLUMN precision")  # a database from before the column
    db.commit()
    db.close()
    content, mtime = db_file.read_bytes(), db_file.stat().st_mtime_ns
    assert runner.invoke(app, ["results", str(tmp_path / "r")]).exit_code == 0
    report = runner.invoke(app, ["report", str(tmp_path / "r"), "--out", str(tmp_path / "x.html")])
    assert "no reproductions recorded yet" in str(report.exception)  # read, and refused in one line
    assert db_file.read_bytes() == content and db_file.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["results.sqlite"]
    db = sqlite3.connect(db_file)
    db.execute("DROP TABLE plan")
    db.commit()
    db.close()
    result = runner.invoke(app, ["results", str(tmp_path / "r")])
    assert "table(s) plan missing" in str(result.exception)
    tables = {r[0] for r in sqlite3.connect(db_file).execute("SELECT name FROM sqlite_master")}
    assert "plan" not in tables  # not silently re-created empty
    ResultsDB.in_directory(tmp_path / "r2").close()  # a writer adds the column to an old database
    ro = tmp_path / "ro"
    ro.mkdir()
    if not (_mount("--bind", str(tmp_path / "r2"), str(ro)) and _mount("-o", "remount,ro,bind", str(ro))):
        _mount_undo(ro)
        pytest.skip("cannot make a read-only folder (bind mount needs root; chmod does not stop root)")
    try:
        listed = runner.invoke(app, ["results", str(ro)])
        assert listed.exit_code == 0, (listed.output, listed.exception)
    finally:
        _mount_undo(ro)


def test_an_unwritable_dataset_cache_is_refused_before_decoding(tmp_path, monkeypatch):
    from dememo.errors import ConfigError

    root = write_image_dir(tmp_path / "set", image_tree())
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("DEMEMO_CACHE", str(tmp_path / "file" / "cache"))
    decoded = []
    monkeypatch.setattr("dememo.data.sources.imagefolder_dataset", lambda *a: decoded.append(a))
    with pytest.raises(ConfigError, match=r"dataset cache \(DEMEMO_CACHE\) .*file/cache"):
        load_dataset("imagefolder", root)
    assert decoded == []
