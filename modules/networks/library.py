"""The LoRA library: files under models/Lora (and --lora-dir), scanned recursively, with their
safetensors header metadata (``ss_*`` training tags), ``.json`` user metadata and ``.civitai.info`` side
files, preview images and A1111's "addnet" short hash.

Header metadata and hashes are cached by path, size and mtime in a JSON file, so that listing many
thousands of files only reads the directory entries.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NETWORK_SUFFIXES = (".safetensors", ".pt", ".ckpt")
PREVIEW_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif")
HEADER_LIMIT = 100 * 1024 * 1024
HASH_BLOCK = 1024 * 1024
SHORTHASH_LENGTH = 12


@dataclass
class NetworkFile:
    """One network file as the panel, the API and the prompt tags name it."""

    name: str
    path: Path
    size: int
    mtime: float
    metadata: dict[str, Any] = field(default_factory=dict)
    user_metadata: dict[str, Any] = field(default_factory=dict)
    civitai: dict[str, Any] = field(default_factory=dict)
    preview: Path | None = None
    sha256: str | None = None

    @property
    def alias(self) -> str:
        """The training output name when the file records one (A1111's "Alias from file")."""
        return str(self.metadata.get("ss_output_name") or self.name)

    @property
    def shorthash(self) -> str | None:
        return self.sha256[:SHORTHASH_LENGTH] if self.sha256 else None

    @property
    def user_metadata_path(self) -> Path:
        return self.path.with_suffix(".json")

    def describe(self) -> dict[str, Any]:
        """`/sdapi/v1/loras` item (A1111's schema)."""
        return {"name": self.name, "alias": self.alias, "path": str(self.path), "metadata": self.metadata}


def read_safetensors_metadata(path: Path) -> dict[str, Any]:
    """The ``__metadata__`` of a safetensors header, with JSON-looking values decoded (as A1111)."""
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise ValueError(f"{path.name}: too short for a safetensors file")
        (length,) = struct.unpack("<Q", prefix)
        if length > HEADER_LIMIT:
            raise ValueError(f"{path.name}: safetensors header of {length} bytes is too large")
        header = json.loads(handle.read(length))
    raw = header.get("__metadata__") or {}
    metadata: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, str) and value[:1] in "{[":
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        metadata[key] = value
    return metadata


def addnet_hash(path: Path) -> str:
    """A1111's LoRA hash: sha256 of a safetensors file's tensor data (after the header), or of the
    whole file for other formats."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        if path.suffix.lower() == ".safetensors":
            (length,) = struct.unpack("<Q", handle.read(8))
            handle.seek(8 + length)
        for block in iter(lambda: handle.read(HASH_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class NetworkLibrary:
    """Network files of some folders. `refresh()` rescans; `find(name)` looks a prompt tag's name up."""

    def __init__(self, directories: list[Path], cache_path: Path | None = None) -> None:
        self.directories = [Path(directory) for directory in directories]
        self.cache_path = cache_path
        self._lock = threading.Lock()
        self._cache: dict[str, Any] = _read_json(cache_path) if cache_path else {}
        self._cache_dirty = False
        self.files: dict[str, NetworkFile] = {}
        self.metadata_reads = 0  # header reads in the last refresh (cache misses)

    # ---- scanning -------------------------------------------------------------------------------
    def refresh(self) -> list[NetworkFile]:
        """Rescan the folders; header metadata comes from the cache while size and mtime match."""
        found: dict[str, NetworkFile] = {}
        self.metadata_reads = 0
        for directory in self.directories:
            if directory.is_dir():
                self._scan(directory, found)
        with self._lock:
            self.files = dict(sorted(found.items(), key=lambda item: item[0].lower()))
        self._save_cache()
        return list(self.files.values())

    def _scan(self, directory: Path, found: dict[str, NetworkFile]) -> None:
        try:
            entries = list(os.scandir(directory))
        except OSError:
            return
        names = {entry.name for entry in entries}
        for entry in sorted(entries, key=lambda item: item.name):
            if entry.is_dir(follow_symlinks=True):
                if not entry.name.startswith("."):
                    self._scan(Path(entry.path), found)
                continue
            stem, suffix = os.path.splitext(entry.name)
            if suffix.lower() not in NETWORK_SUFFIXES or stem in found:
                continue
            status = entry.stat()
            path = Path(entry.path)
            item = NetworkFile(stem, path, status.st_size, status.st_mtime)
            self._fill_from_cache(item)
            if f"{stem}.json" in names:
                item.user_metadata = _read_json(path.with_suffix(".json"))
            if f"{stem}.civitai.info" in names:
                item.civitai = _read_json(path.with_name(f"{stem}.civitai.info"))
            for preview in (f"{stem}{extension}" for middle in ("", ".preview") for extension in (middle + s for s in PREVIEW_SUFFIXES)):
                if preview in names:
                    item.preview = path.with_name(preview)
                    break
            found[stem] = item

    def _fill_from_cache(self, item: NetworkFile) -> None:
        key = str(item.path)
        entry = self._cache.get(key)
        if isinstance(entry, dict) and entry.get("size") == item.size and entry.get("mtime") == item.mtime:
            item.metadata = entry.get("metadata") or {}
            item.sha256 = entry.get("sha256")
            return
        metadata: dict[str, Any] = {}
        if item.path.suffix.lower() == ".safetensors":
            self.metadata_reads += 1
            try:
                metadata = read_safetensors_metadata(item.path)
            except (OSError, ValueError):
                metadata = {}
        item.metadata = metadata
        self._remember(item)

    def _remember(self, item: NetworkFile) -> None:
        with self._lock:
            self._cache[str(item.path)] = {"size": item.size, "mtime": item.mtime, "metadata": item.metadata, "sha256": item.sha256}
            self._cache_dirty = True

    def _save_cache(self) -> None:
        if self.cache_path is None or not self._cache_dirty:
            return
        with self._lock:
            data = dict(self._cache)
            self._cache_dirty = False
        _write_json_atomic(self.cache_path, data)

    # ---- lookups --------------------------------------------------------------------------------
    def items(self) -> list[NetworkFile]:
        return list(self.files.values())

    def find(self, name: str) -> NetworkFile | None:
        """The file called `name` (file stem), else the one whose alias is `name`."""
        if name in self.files:
            return self.files[name]
        for item in self.files.values():
            if item.alias == name:
                return item
        return None

    def hash_of(self, item: NetworkFile) -> str:
        """The file's addnet sha256, computed once and cached with its size and mtime."""
        if item.sha256 is None:
            item.sha256 = addnet_hash(item.path)
            self._remember(item)
            self._save_cache()
        return item.sha256

    def describe(self) -> list[dict[str, Any]]:
        return [item.describe() for item in self.items()]

    def save_user_metadata(self, item: NetworkFile, values: dict[str, Any]) -> None:
        """Write the user metadata (description, activation text, preferred weight...) beside the file."""
        data = dict(item.user_metadata)
        data.update(values)
        _write_json_atomic(item.user_metadata_path, data)
        item.user_metadata = data
