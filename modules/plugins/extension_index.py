"""The "Available" extensions list, read from an index URL in A1111's JSON index format.

The format is `{"tags": {tag: description, ...}, "extensions": [{"name", "url", "description",
"tags", "added"}, ...]}`. A missing or unreachable index gives `ExtensionIndexError` with a message
meant for the page, never a traceback.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

DEFAULT_INDEX_URL = "https://raw.githubusercontent.com/AUTOMATIC1111/stable-diffusion-webui-extensions/master/index.json"
DEFAULT_TIMEOUT_S = 10.0
MAX_INDEX_BYTES = 32 * 1024 * 1024


class ExtensionIndexError(RuntimeError):
    """The index could not be loaded or read; the message is shown to the user as is."""


@dataclass(frozen=True)
class AvailableExtension:
    """One entry of the index."""

    name: str
    url: str
    description: str = ""
    tags: tuple[str, ...] = ()
    added: str = ""


@dataclass(frozen=True)
class ExtensionIndex:
    """The parsed index: tag descriptions and the entries in index order."""

    tags: dict[str, str] = field(default_factory=dict)
    extensions: tuple[AvailableExtension, ...] = ()

    def not_installed(self, installed_urls: set[str]) -> list[AvailableExtension]:
        """Entries whose URL is not among `installed_urls` (compared without a trailing ".git" or "/")."""
        normalized = {normalize_url(url) for url in installed_urls if url}
        return [entry for entry in self.extensions if normalize_url(entry.url) not in normalized]


def normalize_url(url: str) -> str:
    """A git URL reduced for comparison: trimmed, no trailing "/" or ".git", lower case."""
    cleaned = url.strip().rstrip("/")
    if cleaned.endswith(".git"):
        cleaned = cleaned[: -len(".git")]
    return cleaned.lower()


def parse_index(data: Any) -> ExtensionIndex:
    """Validate and convert decoded index JSON; entries without a name or URL are skipped."""
    if not isinstance(data, dict) or not isinstance(data.get("extensions"), list):
        raise ExtensionIndexError('The extension index is not in the expected format: it needs an "extensions" list.')
    raw_tags = data.get("tags") or {}
    tags = {str(key): str(value) for key, value in raw_tags.items()} if isinstance(raw_tags, dict) else {}
    entries = []
    for item in data["extensions"]:
        if not isinstance(item, dict) or not item.get("name") or not item.get("url"):
            continue
        item_tags = item.get("tags") or []
        entries.append(
            AvailableExtension(
                name=str(item["name"]),
                url=str(item["url"]),
                description=str(item.get("description") or ""),
                tags=tuple(str(tag) for tag in item_tags) if isinstance(item_tags, list) else (),
                added=str(item.get("added") or ""),
            )
        )
    return ExtensionIndex(tags=tags, extensions=tuple(entries))


def load_index(url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> ExtensionIndex:
    """Download and parse the index at `url` (http, https or file)."""
    url = (url or "").strip()
    if not url:
        raise ExtensionIndexError("Extension index URL: empty.")
    if not url.lower().startswith(("http://", "https://", "file://")):
        raise ExtensionIndexError(f"Extension index URL: {url!r} must start with http://, https:// or file://.")
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - scheme checked above
            body = response.read(MAX_INDEX_BYTES + 1)
    except urllib.error.HTTPError as error:
        raise ExtensionIndexError(
            f"Could not load the extension index from {url}: the server answered {error.code} {error.reason}."
        ) from None
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        reason = getattr(error, "reason", error)
        raise ExtensionIndexError(
            f"Could not load the extension index from {url}: {reason}. You may be offline; "
            "installing from a URL still works for reachable repositories."
        ) from None
    if len(body) > MAX_INDEX_BYTES:
        raise ExtensionIndexError(f"The extension index at {url} is larger than {MAX_INDEX_BYTES // (1024 * 1024)} MiB.")
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ExtensionIndexError(f"The extension index at {url} is not valid JSON: {error}.") from None
    return parse_index(data)
