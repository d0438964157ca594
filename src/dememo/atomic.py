"""Atomic writes: build in a temporary sibling, then rename into place.

Writers of one directory take an exclusive lock (``fcntl.flock`` on a file under
``<grandparent>/.locks/``), so concurrent saves of the same key never interleave
their renames, and a temporary folder whose writer holds no lock was left by a
killed process and is removed on the next write next to it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

LEFTOVER_SUFFIXES = (".tmp", ".old")


def lock_path(final: Path) -> Path:
    """The lock file guarding ``final``: under ``<grandparent>/.locks/`` so that listings of
    ``final``'s parent stay clean, or next to ``final`` when the grandparent is not writable."""
    final = Path(final).absolute()
    preferred = final.parent.parent / ".locks" / final.parent.name / f"{final.name}.lock"
    try:
        preferred.parent.mkdir(parents=True, exist_ok=True)
        return preferred
    except OSError:
        return final.parent / f".{final.name}.lock"


@contextlib.contextmanager
def directory_lock(final: Path, blocking: bool = True) -> Iterator[bool]:
    """Hold the exclusive lock of ``final``; yields False when ``blocking`` is off and it is taken."""
    fd = os.open(lock_path(final), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing releases the lock


def remove_leftovers(parent: Path) -> None:
    """Remove temporary folders in ``parent`` left by writers that were killed (kill -9).

    A leftover ``.<name>.<random>.tmp`` (or ``.old``) is stale exactly when nobody holds
    ``<name>``'s lock: a live writer holds it from creating its folder to renaming it.
    """
    if not parent.is_dir():
        return
    for entry in parent.iterdir():
        if not (entry.name.startswith(".") and entry.name.endswith(LEFTOVER_SUFFIXES) and entry.is_dir()):
            continue
        name = entry.name[1:].rsplit(".", 2)[0]
        with directory_lock(parent / name, blocking=False) as free:
            if free:
                shutil.rmtree(entry, ignore_errors=True)


@contextlib.contextmanager
def atomic_directory(final: Path, keep_existing: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Yield a fresh temporary directory that becomes ``final`` only on success.

    On any exception (Ctrl-C included) the temporary directory is removed and
    ``final`` is left as it was. An existing ``final`` is replaced whole, unless
    ``keep_existing(final)`` says another writer already finished it (then the new
    one is dropped). The whole write holds ``final``'s lock.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(final.parent)
    with directory_lock(final):
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
        try:
            yield tmp
            if final.exists() and keep_existing is not None and keep_existing(final):
                shutil.rmtree(tmp, ignore_errors=True)
            elif final.exists():
                trash = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=final.parent))
                os.replace(final, trash / "old")
                os.replace(tmp, final)
                shutil.rmtree(trash, ignore_errors=True)
            else:
                os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
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
