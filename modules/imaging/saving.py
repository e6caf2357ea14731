"""Atomic file writes and numbered image saving with metadata.

Every write goes to a temporary file in the destination directory, is
flushed and fsynced, then renamed over the destination with ``os.replace``,
so readers see either the old file or the complete new one. Temporary files
are removed when a write fails.

Sequence numbers are chosen and the file is renamed into place while holding
a lock for that directory, so concurrent saves from threads of this process
get distinct numbers. Other processes writing the same directory are not
coordinated (as in A1111).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from pathlib import Path

from PIL import Image

from modules.imaging import filenames
from modules.imaging.filenames import FilenameContext
from modules.imaging.metadata import encode_image, normalise_format

_TEMPORARY_PREFIX = ".tmp-"
_TEMPORARY_SUFFIX = ".part"
_directory_locks: dict[str, threading.Lock] = {}
_directory_locks_guard = threading.Lock()


def _fsync_directory(directory: Path) -> None:
    """Persist a rename; best effort (not possible on every platform)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file, fsync, ``os.replace``).

    The parent directory must exist. The new file gets the usual permissions
    (``0o666`` minus the umask).
    """
    path = Path(path)
    directory = path.parent
    temporary = directory / (f"{_TEMPORARY_PREFIX}{secrets.token_hex(8)}{_TEMPORARY_SUFFIX}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_directory(directory)


def atomic_write_text(path: Path, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically; see ``atomic_write_bytes``."""
    atomic_write_bytes(path, text.encode(encoding))


def _lock_for(directory: Path) -> threading.Lock:
    key = os.path.realpath(directory)
    with _directory_locks_guard:
        lock = _directory_locks.get(key)
        if lock is None:
            lock = _directory_locks[key] = threading.Lock()
        return lock


def _choose_path(
    directory: Path,
    context: FilenameContext,
    pattern: str,
    extension: str,
    add_number: bool,
    basename: str,
) -> Path:
    """Pick the destination; callers hold the directory lock."""
    if not add_number:
        name = filenames.build_filename(context, pattern, extension, None, basename)
        return directory / name
    number = filenames.next_sequence_number(directory, filenames.sanitize_filename_part(basename))
    while True:
        name = filenames.build_filename(context, pattern, extension, number, basename)
        candidate = directory / name
        if not candidate.exists():
            return candidate
        number += 1


def save_image(
    image: Image.Image,
    directory: Path,
    *,
    context: FilenameContext,
    pattern: str = "",
    extension: str = "png",
    infotext: str | None = None,
    add_number: bool = True,
    save_txt: bool = False,
    quality: int = 80,
    lossless_webp: bool = False,
    basename: str = "",
) -> Path:
    """Save ``image`` into ``directory`` under an A1111-style name.

    The name is ``NNNNN-<pattern>.<extension>`` (``pattern`` empty means
    ``[seed]-[prompt_spaces]``; see ``filenames``), without the number when
    ``add_number`` is false (an existing file of that name is replaced).
    ``infotext`` is embedded as metadata and, with ``save_txt``, also written
    to a ``.txt`` file of the same stem. ``extension`` is one of png, jpg,
    jpeg, webp; anything else raises ``ValueError`` naming ``samples_format``.
    Returns the path of the saved image.
    """
    extension = extension.lower().lstrip(".")
    image_format = normalise_format(extension)
    data = encode_image(image, image_format, infotext, quality=quality, lossless=lossless_webp)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with _lock_for(directory):
        path = _choose_path(directory, context, pattern, extension, add_number, basename)
        atomic_write_bytes(path, data)
        if save_txt and infotext is not None:
            atomic_write_text(path.with_suffix(".txt"), infotext)
    return path
