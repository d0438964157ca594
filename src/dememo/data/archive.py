"""Reading image folders from tar archives without trusting member names."""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from dememo.errors import DataError


def safe_member_path(name: str, archive: Path) -> PurePosixPath:
    """The member's relative path; absolute paths and ``..`` parts are rejected."""
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith(("/", "\\")) or ".." in path.parts:
        raise DataError(f"{archive}: unsafe member path {name!r} (absolute or containing '..')")
    return path


def iter_archive_files(archive: Path) -> Iterator[tuple[PurePosixPath, bytes]]:
    """Yield (relative path, content) for every regular file of a tar archive.

    Links and device files are refused; a truncated or corrupt archive raises a
    DataError naming the archive.
    """
    archive = Path(archive)
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                path = safe_member_path(member.name, archive)
                if member.isdir():
                    continue
                if not member.isfile():
                    raise DataError(f"{archive}: member {member.name!r} is a link or special file")
                handle = tar.extractfile(member)
                assert handle is not None
                yield path, handle.read()
    except (tarfile.TarError, EOFError, OSError) as error:
        raise DataError(f"{archive}: truncated or corrupt archive ({error})") from error
