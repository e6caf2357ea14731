"""Downloading a checkpoint when the user asks for one: resumable, checksummed, with progress.

Only used from the UI's "no checkpoint yet" notice; nothing else in the app touches the network.
"""

from __future__ import annotations

import hashlib
import os
import socket
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

CHUNK_BYTES = 1 << 20


class DownloadError(Exception):
    """The download failed; the message says why. A partial file is kept for resuming."""


@dataclass(frozen=True)
class DownloadSpec:
    """What to fetch, where it is known to live, and the SHA-256 it must have."""

    title: str
    url: str
    filename: str
    sha256: str


STABLE_DIFFUSION_15 = DownloadSpec(
    title="Stable Diffusion 1.5 (v1-5-pruned-emaonly, about 4 GB)",
    url="https://huggingface.co/stable-diffusion-v1-5/stable-diffusion-v1-5/resolve/main/v1-5-pruned-emaonly.safetensors",
    filename="v1-5-pruned-emaonly.safetensors",
    sha256="6ce0161689b3853acaa03779ec93eafe75a02f4ced659bee03f50797806fa2fa",
)


def network_available(url: str = STABLE_DIFFUSION_15.url, timeout: float = 2.0) -> bool:
    """Whether the download host answers a TCP connection quickly (no request is sent)."""
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _hash_existing(path: Path) -> tuple[hashlib._Hash, int]:
    digest = hashlib.sha256()
    size = 0
    if path.exists():
        with open(path, "rb") as handle:
            while block := handle.read(CHUNK_BYTES):
                digest.update(block)
                size += len(block)
    return digest, size


def download(
    spec: DownloadSpec,
    folder: Path,
    progress: Callable[[int, int | None], None] = lambda done, total: None,
    check: Callable[[], None] = lambda: None,
    timeout: float = 30.0,
) -> Path:
    """Fetch `spec` into `folder`, resuming a `.part` file left by an earlier try.

    `progress(bytes_done, bytes_total_or_None)` is called after every chunk; `check()` may raise to
    cancel. The file appears under its final name only once its SHA-256 matches.
    """
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / spec.filename
    if target.exists():
        return target
    partial = folder / (spec.filename + ".part")
    digest, done = _hash_existing(partial)
    request = urllib.request.Request(spec.url, headers={"User-Agent": "sd-studio"})
    if done:
        request.add_header("Range", f"bytes={done}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and done:
            response = None
        else:
            raise DownloadError(f"{spec.url}: HTTP {error.code} {error.reason}") from error
    except (urllib.error.URLError, OSError) as error:
        raise DownloadError(f"cannot reach {urlparse(spec.url).hostname}: {error}") from error
    if response is not None:
        with response:
            if done and response.status != 206:
                digest, done = hashlib.sha256(), 0
            length = response.headers.get("Content-Length")
            total = done + int(length) if length else None
            with open(partial, "ab" if done else "wb") as handle:
                try:
                    while block := response.read(CHUNK_BYTES):
                        handle.write(block)
                        digest.update(block)
                        done += len(block)
                        progress(done, total)
                        check()
                except OSError as error:
                    raise DownloadError(f"download interrupted after {done} bytes: {error}; start it again to resume") from error
                handle.flush()
                os.fsync(handle.fileno())
    if digest.hexdigest() != spec.sha256:
        partial.unlink(missing_ok=True)
        raise DownloadError(
            f"{spec.filename}: checksum mismatch (got {digest.hexdigest()[:12]}…, expected {spec.sha256[:12]}…); the file was discarded"
        )
    os.replace(partial, target)
    return target
