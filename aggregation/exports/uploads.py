"""What an admin's upload must be before it becomes an import job (aggregation/exports/jobs.py).

The request is checked whole before anything is kept: size, shape (one zip alone, or loose
files with exactly one manifest or prompts file), a readable manifest or prompts file, and a
sound zip (no entry climbing out of it, none encrypted, not a zip bomb). A refused upload
raises UploadRejected naming the problem; nothing has been written yet.
"""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from django.conf import settings

from annotation.imports import MANIFEST_NAMES, MANIFEST_SUFFIXES, ManifestError, manifest_read
from richhf_site.errors import ApplicationError

from .importer import IMAGE_SUFFIXES, PromptsError, load_prompts
from .models import ImportJob

PROMPT_SUFFIXES = (".csv", ".jsonl", ".parquet")


class UploadRejected(ApplicationError):
    """The upload as a whole is refused; nothing of it is kept."""

    def __init__(self, message: str, *, status_code: int = 400, field: str = "files") -> None:
        super().__init__(message, status_code=status_code, field=field)


@dataclass(frozen=True)
class UploadedFile:
    """A file of the request: its name as the browser sent it, its size and a readable handle
    (Django's UploadedFile, or an open file in tests and scripts)."""

    name: str
    size: int
    handle: IO[bytes]


# --------------------------------------------------------------------------- checks


def safe_name(name: str) -> str:
    """The base name, refused when it is empty or hidden: files are stored flat under the job's
    folder, so a name can never climb out of it."""
    base = PurePosixPath(name.replace("\\", "/")).name
    if not base or base.startswith(".") or base in {".", ".."}:
        raise UploadRejected(f"{name!r}: not an acceptable file name")
    return base


def zip_members(archive: zipfile.ZipFile, label: str) -> list[zipfile.ZipInfo]:
    """The archive's files, refusing the whole zip on a path that climbs out of it, an
    encrypted entry, or more unpacked bytes than RICHHF_MAX_UNZIPPED_BYTES (a zip bomb)."""
    members: list[zipfile.ZipInfo] = []
    total = 0
    for info in archive.infolist():
        path = PurePosixPath(info.filename)
        if path.is_absolute() or ".." in path.parts or "\\" in info.filename:
            raise UploadRejected(f"{label}: entry {info.filename!r} points outside the archive")
        if info.flag_bits & 0x1:
            raise UploadRejected(f"{label}: entry {info.filename!r} is encrypted")
        if info.is_dir() or path.parts[0] == "__MACOSX" or path.name.startswith("."):
            continue
        total += info.file_size
        if total > settings.RICHHF_MAX_UNZIPPED_BYTES:
            raise UploadRejected(
                f"{label}: unpacks to more than {settings.RICHHF_MAX_UNZIPPED_BYTES:,} bytes "
                "(RICHHF_MAX_UNZIPPED_BYTES)",
                status_code=413,
            )
        members.append(info)
    if not members:
        raise UploadRejected(f"{label}: the archive holds no files")
    return members


def _manifest_in(members: Iterable[zipfile.ZipInfo]) -> zipfile.ZipInfo | None:
    """The manifest closest to the archive's root (items.jsonl first, as import_items does)."""
    found = [m for m in members if PurePosixPath(m.filename).name in MANIFEST_NAMES]
    found.sort(
        key=lambda m: (len(PurePosixPath(m.filename).parts), MANIFEST_NAMES.index(PurePosixPath(m.filename).name))
    )
    return found[0] if found else None


def _check_table(data: bytes, name: str, check: Callable[[Path], Any]) -> None:
    """Runs check on a temporary copy named like the upload, so its messages name the file."""
    with tempfile.TemporaryDirectory(prefix="richhf-check-") as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        try:
            check(path)
        except (ManifestError, PromptsError) as exc:
            raise UploadRejected(str(exc).replace(f"{folder}/", ""), field="files") from exc


def _read_manifest(path: Path) -> None:
    rows = manifest_read(path)
    if not rows:
        raise ManifestError(f"{path}: the manifest has no rows")


def _check_zip(upload: UploadedFile, kind: str) -> None:
    upload.handle.seek(0)
    if not zipfile.is_zipfile(upload.handle):
        raise UploadRejected(f"{upload.name}: not a zip archive")
    upload.handle.seek(0)
    try:
        with zipfile.ZipFile(upload.handle) as archive:
            members = zip_members(archive, upload.name)
            if kind == ImportJob.Kind.ITEMS:
                manifest = _manifest_in(members)
                if manifest is None:
                    raise UploadRejected(f"{upload.name}: no {', '.join(MANIFEST_NAMES)} in the archive")
                _check_table(archive.read(manifest), PurePosixPath(manifest.filename).name, _read_manifest)
            else:
                names = [PurePosixPath(m.filename) for m in members]
                if not any(n.suffix.lower() == ".tfrecord" for n in names):
                    raise UploadRejected(f"{upload.name}: no .tfrecord file in the archive")
                tables = [m for m, n in zip(members, names, strict=True) if n.suffix.lower() in PROMPT_SUFFIXES]
                if len(tables) != 1:
                    raise UploadRejected(
                        f"{upload.name}: needs exactly one prompts file (.csv, .jsonl or .parquet), found {len(tables)}"
                    )
                _check_table(archive.read(tables[0]), PurePosixPath(tables[0].filename).name, load_prompts)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as exc:
        raise UploadRejected(f"{upload.name}: damaged zip archive ({exc})") from exc
    finally:
        upload.handle.seek(0)


def _check_loose(uploads: list[UploadedFile], kind: str) -> None:
    suffixes = [Path(u.name).suffix.lower() for u in uploads]
    if kind == ImportJob.Kind.ITEMS:
        manifests = [u for u, s in zip(uploads, suffixes, strict=True) if s in MANIFEST_SUFFIXES]
        if len(manifests) != 1:
            raise UploadRejected(
                f"items need exactly one manifest (.csv or .jsonl) next to the images, found {len(manifests)}"
            )
        check: Callable[[Path], Any] = _read_manifest
        table = manifests[0]
        allowed = {*MANIFEST_SUFFIXES, *IMAGE_SUFFIXES}
    else:
        if ".tfrecord" not in suffixes:
            raise UploadRejected("a release import needs at least one .tfrecord file")
        tables = [u for u, s in zip(uploads, suffixes, strict=True) if s in PROMPT_SUFFIXES]
        if len(tables) != 1:
            raise UploadRejected(f"a release import needs exactly one prompts file, found {len(tables)}")
        check, table = load_prompts, tables[0]
        allowed = {".tfrecord", *PROMPT_SUFFIXES, *IMAGE_SUFFIXES}
    for upload, suffix in zip(uploads, suffixes, strict=True):
        if suffix not in allowed:
            raise UploadRejected(f"{upload.name}: unexpected kind of file ({suffix or 'no extension'})")
    table.handle.seek(0)
    _check_table(table.handle.read(), safe_name(table.name), check)
    table.handle.seek(0)


def upload_check(*, kind: str, uploads: list[UploadedFile]) -> None:
    """Refuses (UploadRejected) an upload that cannot become a job: nothing is written."""
    if kind not in ImportJob.Kind.values:
        raise UploadRejected(f"kind must be one of {', '.join(ImportJob.Kind.values)}", field="kind")
    if not uploads:
        raise UploadRejected("choose or drop some files first")
    total = sum(u.size for u in uploads)
    if total > settings.RICHHF_MAX_UPLOAD_BYTES:
        raise UploadRejected(
            f"the upload is {total:,} bytes; the limit is {settings.RICHHF_MAX_UPLOAD_BYTES:,} (RICHHF_MAX_UPLOAD_BYTES)",
            status_code=413,
        )
    names = [safe_name(u.name) for u in uploads]
    if len(set(names)) != len(names):
        raise UploadRejected("two files have the same name")
    zips = [u for u in uploads if u.name.lower().endswith(".zip")]
    if zips:
        if len(uploads) != 1:
            raise UploadRejected("upload one zip on its own, or loose files without a zip")
        _check_zip(zips[0], kind)
    else:
        _check_loose(uploads, kind)
