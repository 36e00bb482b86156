"""Where landing files are: a local folder or an object-store prefix (``s3://bucket/prefix``).

``ANALYTICS_LANDING_DIR`` names either. Both kinds answer the same questions with the same rules, so
the loader, the checks and the landing sensor never ask which one they read:

* :meth:`LandingZone.entries` -- every entry of one landing folder (``events/date=2025-01-01`` or
  ``users``) in a stable order, each to read, skipped (hidden, temporary and marker files,
  subfolders; the ledger names them) or refused (a link out of a local landing root);
* :meth:`LandingZone.day_folders` -- the well-formed ``date=YYYY-MM-DD`` folders of a dataset;
* :meth:`LandingFile.open` -- the file's bytes, opened by its exact name (never a glob pattern).

An object store is read through fsspec's ``s3fs`` with the standard AWS settings
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL`` for
an S3-compatible server). Its listings are paginated by s3fs (1,000 keys a page) and never cached
between calls, so a sensor tick sees what is there now. A dataset's objects are listed once per
:class:`ObjectStoreLandingZone` (one ``list_objects_v2`` walk of the dataset's prefix), not once per
day, so a year's backfill costs a few listing pages, not a request per day. An object's version is
its ETag (its ``VersionId`` where the bucket is versioned), which the sensor's run keys use.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import BinaryIO

FORMATS = {
    ".jsonl": "jsonl",
    ".jsonl.gz": "jsonl",
    ".csv": "csv",
    ".csv.gz": "csv",
    ".parquet": "parquet",
}
SUBFOLDER = "subfolder (files in subfolders of a landing folder are not read)"
OBJECT_STORE_SCHEMES = ("s3://", "s3a://")


def skip_reason(name: str) -> str | None:
    """Why a file of this name is not read (hidden, temporary and marker files), else None."""
    if name.startswith("."):
        return "hidden file (name starts with '.')"
    if name.startswith("_"):
        return "marker or temporary file (name starts with '_')"
    if name.startswith("~"):
        return "temporary file (name starts with '~')"
    return None


def is_object_store(location: str | Path) -> bool:
    return isinstance(location, str) and location.lower().startswith(OBJECT_STORE_SCHEMES)


def day_folder_date(name: str) -> date | None:
    """The day of a ``date=YYYY-MM-DD`` folder name, else None (not a day folder: never read)."""
    if not name.startswith("date="):
        return None
    try:
        return date.fromisoformat(name.removeprefix("date="))
    except ValueError:
        return None


@dataclass(frozen=True)
class LandingFile:
    location: str  # the local path, or bucket/key in the object store
    relative: str  # path relative to the landing root, as recorded in the warehouse
    size_bytes: int
    modified_at: datetime  # UTC, naive
    # why the entry is not read at all: recorded in the ledger only (hidden, temporary, marker
    # files, subfolders, special files)
    skipped: str | None = None
    # why the entry is rejected whole without being opened (a link out of the landing zone)
    refused: str | None = None
    # what tells two versions of the file apart: the modification time in ns of a local file, the
    # ETag (or VersionId) of an object
    version: str = ""
    modified_ns: int = 0  # the modification time in ns since the epoch (the sensor's high-water mark)
    zone: LandingZone | None = field(default=None, compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.relative.rstrip("/").rsplit("/", 1)[-1]

    @property
    def format(self) -> str | None:
        name = self.name.lower()
        for suffix, kind in sorted(FORMATS.items(), key=lambda item: -len(item[0])):
            if name.endswith(suffix):
                return kind
        return None

    @property
    def compressed(self) -> bool:
        return self.name.lower().endswith(".gz")

    def open(self) -> BinaryIO:
        """The file's bytes as a binary stream that can seek (Parquet reads its footer first)."""
        assert self.zone is not None
        return self.zone.open(self.location)

    def read_bytes(self) -> bytes:
        with self.open() as stream:
            return stream.read()


class LandingZone(ABC):
    """The landing root: ``<dataset>/date=YYYY-MM-DD/<files>`` and ``<dimension>/<files>``."""

    url: str  # what messages show

    @staticmethod
    def at(location: LandingZone | str | Path) -> LandingZone:
        """The zone at ``location`` (a zone is returned as it is, keeping what it has listed)."""
        if isinstance(location, LandingZone):
            return location
        if is_object_store(location):
            return ObjectStoreLandingZone(str(location))
        return LocalLandingZone(Path(location))

    @abstractmethod
    def exists(self) -> bool: ...

    @abstractmethod
    def entries(self, folder: str) -> list[LandingFile]:
        """Every entry of the landing folder ``folder`` (relative to the root), sorted by name."""

    @abstractmethod
    def day_folders(self, dataset: str) -> list[tuple[str, date]]:
        """``(folder relative to the root, day)`` of every well-formed day folder of ``dataset``."""

    @abstractmethod
    def open(self, location: str) -> BinaryIO: ...

    def folder(self, dataset: str, day: date | None) -> str:
        return f"{dataset}/date={day.isoformat()}" if day is not None else dataset

    def files(self, datasets: Iterable[str], dimensions: Iterable[str]) -> list[tuple[str, date | None, LandingFile]]:
        """``(dataset, day, entry)`` of every entry of every day folder of ``datasets`` and of the
        folders of ``dimensions`` (day None): what the landing sensor compares with its cursor."""
        found = []
        for dataset in datasets:
            for folder, day in self.day_folders(dataset):
                found.extend((dataset, day, entry) for entry in self.entries(folder))
        for dimension in dimensions:
            found.extend((dimension, None, entry) for entry in self.entries(dimension))
        return found


class LocalLandingZone(LandingZone):
    def __init__(self, root: Path):
        self.root = root
        self.url = str(root)

    def exists(self) -> bool:
        return self.root.is_dir()

    def entries(self, folder: str) -> list[LandingFile]:
        """Hidden, temporary and marker files, subfolders and special files are skipped; a symbolic
        link is read only when it resolves to a regular file inside the landing root, a link out of
        it is refused without opening its target."""
        directory = self.root / folder
        if not directory.is_dir():
            return []
        root = self.root.resolve()
        files = []
        for path in sorted(directory.iterdir()):
            skipped, refused = skip_reason(path.name), None
            if skipped is None and path.is_symlink():
                try:
                    target = path.resolve()
                except (OSError, RuntimeError):  # a loop of links
                    target = None
                if target is None:
                    refused = "symbolic link that does not resolve (a loop of links)"
                elif not target.is_relative_to(root):
                    refused = "symbolic link to a file outside the landing zone (not followed)"
                elif not target.exists():
                    refused = "broken symbolic link"
            if skipped is None and refused is None:
                if path.is_dir():
                    skipped = SUBFOLDER
                elif not path.is_file():
                    skipped = "not a regular file"
            # a skipped or refused entry is described by itself, never by what a link points to
            stat = path.lstat() if skipped or refused else path.stat()
            folder_entry = skipped is not None and path.is_dir()
            files.append(
                LandingFile(
                    location=str(path),
                    relative=path.relative_to(self.root).as_posix() + ("/" if folder_entry else ""),
                    size_bytes=0 if folder_entry else stat.st_size,  # a folder has no size of its own
                    modified_at=datetime.fromtimestamp(stat.st_mtime, tz=UTC).replace(tzinfo=None),
                    skipped=skipped,
                    refused=refused,
                    version=str(stat.st_mtime_ns),
                    modified_ns=stat.st_mtime_ns,
                    zone=self,
                )
            )
        return files

    def day_folders(self, dataset: str) -> list[tuple[str, date]]:
        base = self.root / dataset
        if not base.is_dir():
            return []
        with os.scandir(base) as folders:
            found = [(f"{dataset}/{entry.name}", day_folder_date(entry.name)) for entry in folders if entry.is_dir()]
        return sorted((folder, day) for folder, day in found if day is not None)

    def open(self, location: str) -> BinaryIO:
        return open(location, "rb")


class ObjectStoreLandingZone(LandingZone):
    """Objects under ``s3://bucket/prefix``; a "folder" is a key prefix ending in ``/``."""

    def __init__(self, url: str):
        import s3fs  # imported here: a local landing zone never needs it

        self.url = url.rstrip("/")
        self.root = self.url.split("://", 1)[1]  # bucket/prefix, as s3fs names paths
        self.fs = s3fs.S3FileSystem(
            # never answer a listing from an earlier one: the sensor must see what is there now
            use_listings_cache=False,
            skip_instance_cache=True,
            client_kwargs={"endpoint_url": os.environ["AWS_ENDPOINT_URL"]}
            if os.environ.get("AWS_ENDPOINT_URL")
            else {},
        )
        self._listed: dict[str, dict[str, dict]] = {}  # top-level folder -> relative key -> object info

    def exists(self) -> bool:
        bucket = self.root.split("/", 1)[0]
        try:
            return self.fs.exists(bucket) and (self.root == bucket or self.fs.isdir(self.root))
        except OSError:  # PermissionError included
            return False

    def _objects(self, top: str) -> dict[str, dict]:
        """Every object under ``<root>/<top>/`` by its key relative to the root (one paginated
        listing per zone object and top-level folder)."""
        if top not in self._listed:
            base = f"{self.root}/{top}"
            try:
                found = self.fs.find(base, detail=True, withdirs=False)
            except FileNotFoundError:
                found = {}
            prefix = f"{self.root}/"
            self._listed[top] = {
                key.removeprefix(prefix): info
                for key, info in found.items()
                if key.startswith(f"{base}/") and not key.endswith("/")  # not a folder marker object
            }
        return self._listed[top]

    def entries(self, folder: str) -> list[LandingFile]:
        folder = folder.strip("/")
        objects = self._objects(folder.split("/", 1)[0])
        files: dict[str, LandingFile] = {}
        for relative, info in objects.items():
            parent, _, rest = relative.partition(f"{folder}/")
            if parent or not rest:
                continue
            name, _, deeper = rest.partition("/")
            if deeper:  # an object in a subfolder: the subfolder is one skipped entry
                key = f"{folder}/{name}/"
                if key not in files:
                    files[key] = self._entry(key, info, skipped=skip_reason(name) or SUBFOLDER, size=0)
                continue
            files[relative] = self._entry(relative, info, skipped=skip_reason(name))
        return [files[key] for key in sorted(files)]

    def _entry(self, relative: str, info: dict, skipped: str | None, size: int | None = None) -> LandingFile:
        modified = info.get("LastModified")
        if not isinstance(modified, datetime):
            modified = datetime.fromtimestamp(0, tz=UTC)
        elif modified.tzinfo is None:
            modified = modified.replace(tzinfo=UTC)
        version = info.get("VersionId") or str(info.get("ETag", "")).strip('"')
        return LandingFile(
            location=f"{self.root}/{relative}",
            relative=relative,
            size_bytes=int(info.get("size", 0)) if size is None else size,
            modified_at=modified.astimezone(UTC).replace(tzinfo=None),
            modified_ns=int(modified.timestamp()) * 1_000_000_000 + modified.microsecond * 1000,
            skipped=skipped,
            version=version,
            zone=self,
        )

    def day_folders(self, dataset: str) -> list[tuple[str, date]]:
        folders = set()
        for relative in self._objects(dataset):
            parts = relative.split("/")
            if len(parts) >= 3 and (day := day_folder_date(parts[1])) is not None:
                folders.add((f"{dataset}/{parts[1]}", day))
        return sorted(folders)

    def open(self, location: str) -> BinaryIO:
        return self.fs.open(location, "rb")

    def upload(self, folder: Path) -> None:
        """Put every file under the local ``folder`` at the same relative key under the root."""
        files = sorted(path for path in folder.rglob("*") if path.is_file())
        self.fs.put(
            [str(path) for path in files], [f"{self.root}/{path.relative_to(folder).as_posix()}" for path in files]
        )
        self._listed.clear()
