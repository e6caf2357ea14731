"""Checkpoint and VAE discovery, hashing, and A1111-style lookup.

Names follow A1111: a checkpoint's ``name`` is its path relative to the models folder
*with* extension, using ``/`` (``sub/model.safetensors``); its ``title`` is
``"name [shorthash]"`` once the sha256 is known, else just the name; ``shorthash`` is
the first 10 hex digits of the file's sha256. ``model_name`` is the file stem, which
A1111 writes as ``Model:`` in infotexts; ``api_model_name`` is A1111's
``model_name`` field of ``/sdapi/v1/sd-models`` (relative path without extension,
separators replaced by ``_``).

Hashes live in an A1111-compatible ``cache.json``
(``{"hashes": {"checkpoint/<name>": {"mtime": ..., "sha256": ...}}}``, plus a
``size`` field of ours). Like A1111, listing reads hashes from the cache only; a
hash is computed (in 1 MB blocks) when asked for, typically when a model is loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHECKPOINT_SUFFIXES = (".safetensors", ".ckpt")
VAE_SUFFIXES = (".safetensors", ".pt", ".ckpt")
VAE_BESIDE_SUFFIXES = (".vae.pt", ".vae.ckpt", ".vae.safetensors")
HASH_BLOCK_BYTES = 1024 * 1024
SHORTHASH_LENGTH = 10


def sha256_of_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(HASH_BLOCK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def legacy_model_hash(path: Path) -> str:
    """A1111's old 8-digit "model hash": sha256 of the 64 KiB starting at 1 MiB into the file."""
    with open(path, "rb") as handle:
        handle.seek(0x100000)
        return hashlib.sha256(handle.read(0x10000)).hexdigest()[:8]


class HashCache:
    """sha256 cache stored in an A1111-compatible ``cache.json``.

    Entries are keyed ``"<kind>/<name>"`` (kind ``checkpoint``, ``vae``, ``lora``...)
    and trusted only while the file's mtime and size are unchanged. Unknown
    sections of the file are preserved; a corrupt file is ignored and rewritten.
    """

    SECTION = "hashes"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._data: dict[str, Any] = self._read()

    def _read(self) -> dict[str, Any]:
        try:
            with open(self.path, encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or not isinstance(data.get(self.SECTION, {}), dict):
            return {}
        return data

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(prefix=self.path.name, suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                json.dump(self._data, handle, indent=4)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def cached_sha256(self, key: str, path: Path) -> str | None:
        """The cached sha256 for ``key`` if it still describes ``path``'s current content."""
        with self._lock:
            entry = self._data.get(self.SECTION, {}).get(key)
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            return None
        try:
            status = Path(path).stat()
        except OSError:
            return None
        if entry.get("mtime") != status.st_mtime:
            return None
        if "size" in entry and entry["size"] != status.st_size:
            return None
        return entry["sha256"]

    def sha256(self, key: str, path: Path) -> str:
        """sha256 of ``path``, from the cache when still valid, else computed and stored."""
        cached = self.cached_sha256(key, path)
        if cached is not None:
            return cached
        status = Path(path).stat()
        digest = sha256_of_file(Path(path))
        with self._lock:
            self._data.setdefault(self.SECTION, {})[key] = {
                "mtime": status.st_mtime,
                "sha256": digest,
                "size": status.st_size,
            }
            self._write()
        return digest


@dataclass
class CheckpointInfo:
    """One checkpoint file as the UI, the API and infotexts name it."""

    filename: Path
    name: str
    sha256: str | None = None
    legacy_hash: str | None = None

    @property
    def shorthash(self) -> str | None:
        return self.sha256[:SHORTHASH_LENGTH] if self.sha256 else None

    @property
    def title(self) -> str:
        return f"{self.name} [{self.shorthash}]" if self.shorthash else self.name

    @property
    def model_name(self) -> str:
        """File stem, written as ``Model:`` in infotexts."""
        return _strip_suffix(Path(self.name).name)

    @property
    def api_model_name(self) -> str:
        """A1111's ``model_name`` in ``/sdapi/v1/sd-models``."""
        return _strip_suffix(self.name).replace("/", "_").replace("\\", "_")

    @property
    def is_safetensors(self) -> bool:
        return self.filename.suffix.lower() == ".safetensors"

    @property
    def cache_key(self) -> str:
        return f"checkpoint/{self.name}"

    def calculate_sha256(self, cache: HashCache) -> str:
        """Compute (or fetch from the cache) the sha256 and remember it on this object."""
        self.sha256 = cache.sha256(self.cache_key, self.filename)
        return self.sha256

    def aliases(self) -> list[str]:
        """Every string that A1111 accepts as an exact reference to this checkpoint."""
        names = [self.title, self.name, _strip_suffix(self.name), self.model_name, self.api_model_name]
        if self.legacy_hash:
            names += [self.legacy_hash, f"{self.name} [{self.legacy_hash}]"]
        if self.sha256:
            names += [self.sha256, self.shorthash or ""]
        return [name for name in names if name]


def _strip_suffix(name: str) -> str:
    root, _ = os.path.splitext(name)
    return root


def _natural_key(text: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text.lower())]


def _walk(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    found = []
    for root, _, files in os.walk(folder, followlinks=True):
        for file_name in files:
            if file_name.lower().endswith(suffixes):
                found.append(Path(root) / file_name)
    return found


def _relative_name(path: Path, folder: Path) -> str:
    try:
        return path.resolve().relative_to(folder.resolve()).as_posix()
    except ValueError:
        return path.name


def list_checkpoints(dirs: Iterable[Path], cache: HashCache, *, compute_hashes: bool = False) -> list[CheckpointInfo]:
    """Find ``.safetensors``/``.ckpt`` checkpoints under ``dirs`` (recursively), sorted by name.

    ``*.vae.safetensors``/``*.vae.ckpt`` files are skipped (they are VAEs). sha256 comes
    from the cache unless ``compute_hashes`` is true; the first folder wins when the
    same name appears twice.
    """
    infos: dict[str, CheckpointInfo] = {}
    for folder in dirs:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        for path in _walk(folder, CHECKPOINT_SUFFIXES):
            if path.name.lower().endswith(VAE_BESIDE_SUFFIXES):
                continue
            name = _relative_name(path, folder)
            if name in infos:
                continue
            info = CheckpointInfo(filename=path.resolve(), name=name)
            try:
                # Files under 1 MiB would all share the hash of an empty read: leave it out.
                if path.stat().st_size > 0x100000:
                    info.legacy_hash = legacy_model_hash(path)
                if compute_hashes:
                    info.calculate_sha256(cache)
                else:
                    info.sha256 = cache.cached_sha256(info.cache_key, path)
            except OSError:
                continue
            infos[name] = info
    return sorted(infos.values(), key=lambda info: info.name.lower())


def find_checkpoint(infos: Iterable[CheckpointInfo], query: str | os.PathLike[str]) -> CheckpointInfo | None:
    """Resolve a ``--ckpt`` value, ``sd_model_checkpoint`` setting or API override like A1111.

    Tries exact aliases (title, name with or without extension, stem, sha256, shorthash,
    old 8-digit hash), then the file path, then the shortest title containing the query,
    then the same with a trailing ``[hash]`` removed.
    """
    infos = list(infos)
    text = os.fspath(query).strip()
    if not text:
        return None
    for info in infos:
        if text in info.aliases():
            return info
    candidate = Path(text).expanduser()
    for info in infos:
        if candidate == info.filename or (candidate.exists() and candidate.resolve() == info.filename):
            return info
    without_hash = re.sub(r"\s*\[[0-9a-fA-F]{0,64}\]$", "", text)
    for needle in (text, without_hash):
        for info in infos:
            if needle in info.aliases():
                return info
        found = sorted((info for info in infos if needle and needle in info.title), key=lambda info: len(info.title))
        if found:
            return found[0]
    return None


def list_vaes(dirs: Iterable[Path], checkpoint_dirs: Iterable[Path] = ()) -> dict[str, Path]:
    """VAE files by A1111 display name (file name with extension), naturally sorted.

    All ``.safetensors``/``.pt``/``.ckpt`` files under ``dirs`` count; under
    ``checkpoint_dirs`` only ``*.vae.{pt,ckpt,safetensors}`` files do.
    """
    found: list[Path] = []
    for folder in dirs:
        if Path(folder).is_dir():
            found += _walk(Path(folder), VAE_SUFFIXES)
    for folder in checkpoint_dirs:
        if Path(folder).is_dir():
            found += _walk(Path(folder), VAE_BESIDE_SUFFIXES)
    vaes: dict[str, Path] = {}
    for path in sorted(found, key=lambda path: _natural_key(path.name)):
        vaes.setdefault(path.name, path.resolve())
    return vaes


def vae_beside_checkpoint(checkpoint_path: Path) -> Path | None:
    """``<stem>.vae.pt``/``.vae.ckpt``/``.vae.safetensors`` next to the checkpoint, if any."""
    checkpoint_path = Path(checkpoint_path)
    stem = _strip_suffix(checkpoint_path.name)
    for suffix in VAE_BESIDE_SUFFIXES:
        candidate = checkpoint_path.with_name(stem + suffix)
        if candidate.is_file():
            return candidate
    return None
