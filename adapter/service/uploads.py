"""Safe extraction of an uploaded trial package zip.

A member is refused, and nothing of the archive kept, when its name is absolute
or climbs out with ``..``, is longer than a file system takes, or is both a file
and a folder (``a`` and ``a/b``), when it is a link or any other non-regular file,
when it is encrypted or its data is corrupt, or when the archive unpacks to more
than the configured limit.
The limit is enforced on the bytes actually written, not on the sizes the
archive declares (a crafted archive can lie about them). When every member sits
in one top-level folder (a zipped package folder), that folder is stripped.
"""

from __future__ import annotations

import shutil
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import IO

from adapter.service.problems import ApiError

MAX_MEMBERS = 10_000
MAX_NAME = 1024  # characters in a member's path
MAX_PART = 255  # characters in one of its folder or file names (what file systems take)
_CHUNK = 1 << 16


def extract_zip(archive: IO[bytes], destination: Path, *, max_unpacked_bytes: int) -> list[str]:
    """Unpack ``archive`` into the new folder ``destination``; returns the member paths written."""
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = _checked_members(zipped, max_unpacked_bytes)
            strip = _common_folder(members)
            destination.mkdir(parents=True)
            try:
                return _write(zipped, members, strip, destination, max_unpacked_bytes)
            except BaseException:
                shutil.rmtree(destination, ignore_errors=True)
                raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError, zlib.error) as error:
        raise ApiError(400, f"the upload is not a readable zip archive: {type(error).__name__}: {error}") from error


def _checked_members(zipped: zipfile.ZipFile, max_unpacked_bytes: int) -> list[zipfile.ZipInfo]:
    infos = zipped.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ApiError(413, f"the archive has {len(infos)} members; at most {MAX_MEMBERS} are accepted")
    declared = 0
    seen: set[str] = set()
    files = []
    for info in infos:
        name = info.filename
        path = PurePosixPath(name)
        if "\\" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":") or "\x00" in name:
            raise ApiError(400, "archive member has an absolute or non-portable path", expression=name)
        if ".." in path.parts:
            raise ApiError(400, "archive member climbs out of the package with '..'", expression=name)
        if len(name) > MAX_NAME or any(len(part) > MAX_PART for part in path.parts):
            raise ApiError(400, f"archive member's path is longer than {MAX_NAME} characters or has a name longer "
                           f"than {MAX_PART}", expression=name[:MAX_NAME])
        mode = info.external_attr >> 16
        kind = stat.S_IFMT(mode)
        if info.create_system == 3 and kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            what = "a symbolic link" if kind == stat.S_IFLNK else "not a regular file"
            raise ApiError(400, f"archive member is {what}", expression=name)
        if info.flag_bits & 0x1:
            raise ApiError(400, "archive member is encrypted", expression=name)
        if info.is_dir():
            continue
        if str(path) in seen:
            raise ApiError(400, "archive member appears twice", expression=name)
        seen.add(str(path))
        declared += info.file_size
        if info.file_size > max_unpacked_bytes or declared > max_unpacked_bytes:
            raise ApiError(413, f"the archive unpacks to more than {max_unpacked_bytes} bytes", expression=name)
        files.append(info)
    if not files:
        raise ApiError(400, "the archive holds no files")
    folders = {str(parent) for info in files for parent in PurePosixPath(info.filename).parents}
    if clash := next((info.filename for info in files if str(PurePosixPath(info.filename)) in folders), None):
        raise ApiError(400, "archive member is a file and also the folder of other members", expression=clash)
    return files


def _common_folder(members: list[zipfile.ZipInfo]) -> int:
    """1 when every member is inside the same top-level folder, else 0: how many leading parts to drop."""
    tops = {PurePosixPath(info.filename).parts[0] for info in members}
    nested = all(len(PurePosixPath(info.filename).parts) > 1 for info in members)
    return 1 if len(tops) == 1 and nested else 0


def _write(
    zipped: zipfile.ZipFile, members: list[zipfile.ZipInfo], strip: int, destination: Path, max_unpacked_bytes: int
) -> list[str]:
    written = 0
    names = []
    root = destination.resolve()
    for info in members:
        relative = PurePosixPath(*PurePosixPath(info.filename).parts[strip:])
        target = (destination / relative).resolve()
        if not target.is_relative_to(root):
            raise ApiError(400, "archive member escapes the package folder", expression=info.filename)
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipped.open(info) as source, open(target, "xb") as sink:
            while chunk := source.read(_CHUNK):
                written += len(chunk)
                if written > max_unpacked_bytes:
                    raise ApiError(
                        413, f"the archive unpacks to more than {max_unpacked_bytes} bytes", expression=info.filename
                    )
                sink.write(chunk)
        names.append(str(relative))
    return names
