"""Atomic writes: build in a temporary sibling, then rename into place.

Writers of one directory ``final`` take an exclusive lock (``fcntl.flock`` on the
hidden file ``.dememo-<name>.lock`` beside it, removed when the writer is done), so
concurrent saves of one key never interleave their renames. Every temporary folder
dememo makes is named ``.dememo-<name>.<random>.tmp`` (or ``.old``) and holds a marker
file naming ``<name>``; one whose key nobody has locked was left by a killed writer and
is removed on the next write beside it. Nothing else is ever removed: a user's own
``.photos.old`` or ``.x.tmp`` folder is not dememo's (no prefix, no marker).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from dememo.errors import StorageError

PREFIX = ".dememo-"
LEFTOVER_SUFFIXES = (".tmp", ".old")
MARKER = ".dememo-temporary"  # inside each temporary folder: {"dememo": "temporary", "for": <name>}
PAYLOAD = "new"  # the folder that becomes ``final``, inside the temporary folder
# a full disk, a read-only or forbidden place: the user's to fix, so one line naming the path
STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR,
                  errno.EEXIST, errno.EFBIG}  # fmt: skip


def storage_error(path: Path, error: OSError) -> StorageError:
    """``error`` (while writing ``path``) as one line naming the path and the cause."""
    cause = error.strerror or str(error)
    where = f" ({error.filename})" if error.filename and str(error.filename) != str(path) else ""
    return StorageError(f"{path}: cannot write it: {cause}{where}; nothing was changed there, run again "
                        f"once it is fixed")  # fmt: skip


@contextlib.contextmanager
def storage_errors(path: Path) -> Iterator[None]:
    """Turn a full disk, a read-only folder or a refused permission while writing ``path`` into a
    StorageError naming it; other OSErrors pass unchanged."""
    try:
        yield
    except OSError as error:
        if error.errno in STORAGE_ERRNOS:
            raise storage_error(path, error) from error
        raise


def lock_path(final: Path) -> Path:
    """The lock file guarding ``final``: hidden, beside it, and removed by its last holder."""
    final = Path(final).absolute()
    return final.parent / f"{PREFIX}{final.name}.lock"


@contextlib.contextmanager
def directory_lock(final: Path, blocking: bool = True) -> Iterator[bool]:
    """Hold the exclusive lock of ``final``; yields False when ``blocking`` is off and it is taken.

    The holder unlinks the lock file before releasing it, so none is left behind; a waiter
    that then wins the lock on the unlinked file sees that the path no longer names its
    file and retries on a fresh one (so two holders never coexist).
    """
    path = lock_path(final)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            yield False
            return
        except BaseException:
            os.close(fd)
            raise
        held = os.fstat(fd)
        try:
            current = os.stat(path)
        except FileNotFoundError:
            current = None
        if current is not None and (current.st_ino, current.st_dev) == (held.st_ino, held.st_dev):
            break
        os.close(fd)  # the previous holder removed this file: lock the new one
    try:
        yield True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.close(fd)  # closing releases the lock


def _temporary(final: Path, suffix: str) -> Path:
    """A new, marked temporary folder beside ``final`` (``.dememo-<name>.<random><suffix>``)."""
    folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{final.name}.", suffix=suffix, dir=final.parent))
    (folder / MARKER).write_text(json.dumps({"dememo": "temporary", "for": final.name}))
    return folder


def _marked_for(entry: Path) -> str | None:
    """The name a dememo temporary folder was made for; None for anything else."""
    if not (entry.name.startswith(PREFIX) and entry.name.endswith(LEFTOVER_SUFFIXES)):
        return None
    try:
        if entry.is_symlink() or not entry.is_dir():
            return None
        marker = json.loads((entry / MARKER).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or marker.get("dememo") != "temporary":
        return None
    name = marker.get("for")
    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        return None
    return name if entry.name.startswith(f"{PREFIX}{name}.") else None


def remove_leftovers(parent: Path) -> None:
    """Remove temporary folders in ``parent`` left by dememo writers that were killed (kill -9).

    Only folders dememo made are candidates (``.dememo-<name>.*.tmp``/``.old`` holding the
    marker file for ``<name>``), and one is stale exactly when nobody holds ``<name>``'s lock:
    a live writer holds it from creating its folder to removing it. A killed writer's lock
    file (``.dememo-<name>.lock``, nobody holding it) goes too.
    """
    if not parent.is_dir():
        return
    for entry in parent.iterdir():
        if entry.name.startswith(PREFIX) and entry.name.endswith(".lock") and entry.is_file():
            name = entry.name[len(PREFIX) : -len(".lock")]
            with directory_lock(parent / name, blocking=False):
                pass  # a free lock file is removed by taking and releasing it
            continue
        name = _marked_for(entry)
        if name is None:
            continue
        with directory_lock(parent / name, blocking=False) as free:
            if free:
                shutil.rmtree(entry, ignore_errors=True)


@contextlib.contextmanager
def atomic_directory(final: Path, keep_existing: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Yield a fresh directory that becomes ``final`` only on success.

    On any exception (Ctrl-C included) the temporary folder is removed and ``final`` is
    left as it was. An existing ``final`` is replaced whole, unless ``keep_existing(final)``
    says another writer already finished it (then the new one is dropped). The whole write
    holds ``final``'s lock. The yielded directory is made with the usual mode (0777 less
    the umask), so ``final`` is too.
    """
    final = Path(final)
    with storage_errors(final):
        final.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(final.parent)
    with storage_errors(final), directory_lock(final):
        work = _temporary(final, ".tmp")
        try:
            tmp = work / PAYLOAD
            tmp.mkdir()
            yield tmp
            if final.exists() and keep_existing is not None and keep_existing(final):
                pass
            elif final.exists():
                trash = _temporary(final, ".old")
                os.replace(final, trash / "old")
                os.replace(tmp, final)
                shutil.rmtree(trash, ignore_errors=True)
            else:
                os.replace(tmp, final)
        finally:
            shutil.rmtree(work, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    with storage_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a written file gets the usual mode
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and a rename."""
    atomic_write_bytes(path, text.encode("utf-8"))
