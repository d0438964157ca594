"""Reading image folders from tar archives without trusting the archive.

Member names are not trusted (absolute paths, '..' and links are refused),
sizes are capped, members the caller does not want are skipped without being
read, and the stream is read to its real end: tarfile treats a corrupt header
as the end of the archive, so a truncated copy would otherwise load as a
smaller dataset without any error.
"""

from __future__ import annotations

import lzma
import tarfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

from dememo.errors import DataError

MAX_MEMBER_BYTES = 64 << 20  # one image file; far above any dataset image
END_BLOCK = bytes(tarfile.BLOCKSIZE)


def safe_member_path(name: str, archive: Path) -> PurePosixPath:
    """The member's relative path; absolute paths and ``..`` parts are rejected."""
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith(("/", "\\")) or ".." in path.parts:
        raise DataError(f"{archive}: unsafe member path {name!r} (absolute or containing '..')")
    return path


def is_hidden(path: PurePosixPath) -> bool:
    """Files like ``._x.jpg``, ``.DS_Store`` or anything under ``__MACOSX/`` (OS metadata)."""
    return any(part.startswith(".") or part == "__MACOSX" for part in path.parts)


class _LastRead:
    """A file wrapper that remembers the last block read (tarfile's last header attempt)."""

    def __init__(self, fileobj) -> None:
        self.fileobj = fileobj
        self.name = getattr(fileobj, "name", None)
        self.last: bytes | None = None

    def read(self, size: int = -1) -> bytes:
        self.last = self.fileobj.read(size)
        return self.last

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.fileobj.seek(offset, whence)

    def tell(self) -> int:
        return self.fileobj.tell()

    def close(self) -> None:
        self.fileobj.close()


def iter_archive_files(
    archive: Path,
    wanted: Callable[[PurePosixPath], bool] = lambda path: True,
    max_member_bytes: int = MAX_MEMBER_BYTES,
) -> Iterator[tuple[PurePosixPath, bytes]]:
    """Yield (relative path, content) for every wanted regular file of a tar archive.

    Hidden files and unwanted members are skipped before their content is read;
    links and device files among wanted members are refused. A truncated or
    corrupt archive raises a DataError naming the archive.
    """
    archive = Path(archive)
    try:
        with tarfile.open(archive, "r:*") as tar:
            recorder = _LastRead(tar.fileobj)
            tar.fileobj = recorder
            for member in tar:
                path = safe_member_path(member.name, archive)
                if member.isdir() or is_hidden(path) or not wanted(path):
                    continue
                if not member.isfile():
                    raise DataError(f"{archive}: member {member.name!r} is a link or special file")
                if member.size > max_member_bytes:
                    raise DataError(
                        f"{archive}: member {member.name!r} claims {member.size} bytes, above the "
                        f"limit of {max_member_bytes} bytes for one file"
                    )
                handle = tar.extractfile(member)
                assert handle is not None
                content = handle.read()
                if len(content) != member.size:
                    raise DataError(
                        f"{archive}: truncated or corrupt archive (member {member.name!r} is short)"
                    )
                yield path, content
            _check_end(tar, recorder, archive)
    except (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError) as error:
        raise DataError(f"{archive}: truncated or corrupt archive ({error})") from error


def _check_end(tar: tarfile.TarFile, recorder: _LastRead, archive: Path) -> None:
    """Raise unless iteration stopped at a real end-of-archive block followed only by zeros."""
    if recorder.last is None:  # no header was read after opening: read the final block again
        tar.fileobj.seek(tar.offset)
        recorder.read(tarfile.BLOCKSIZE)
    if recorder.last != END_BLOCK:
        raise DataError(
            f"{archive}: truncated or corrupt archive (no end-of-archive marker after byte {tar.offset})"
        )
    while chunk := recorder.read(1 << 20):  # to the real end: also checks a gzip stream's trailer
        if chunk.count(0) != len(chunk):
            raise DataError(f"{archive}: truncated or corrupt archive (data after the end-of-archive marker)")
