"""Page assets of enabled extensions: javascript/*.js into the page head, style.css into the page CSS.

Called once when the page is built; disabled extensions contribute nothing. A file that cannot be
read is skipped with a log line naming the extension.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterable
from pathlib import Path

from modules.plugins.extensions import Extension

log = logging.getLogger(__name__)

STYLE_FILE = "style.css"


def _read(extension: Extension, path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        log.error("extension %s: cannot read %s: %s", extension.name, path.name, error)
        return None


def extension_scripts(extensions: Iterable[Extension]) -> list[tuple[Extension, Path]]:
    """(extension, file) for every javascript/*.js of the enabled extensions, in load order."""
    return [(extension, path) for extension in extensions if extension.enabled for path in extension.files("javascript", ".js")]


def extension_head_html(extensions: Iterable[Extension]) -> str:
    """One inline <script> per JavaScript file, each marked with its extension and file name."""
    parts = []
    for extension, path in extension_scripts(extensions):
        source = _read(extension, path)
        if source is None:
            continue
        label = html.escape(f"{extension.name}/javascript/{path.name}", quote=True)
        safe_source = source.replace("</script", "<\\/script")
        parts.append(f'<script data-extension-script="{label}">\n{safe_source}\n</script>')
    return "\n".join(parts)


def extension_css(extensions: Iterable[Extension]) -> str:
    """The style.css of every enabled extension, each under a comment naming it."""
    parts = []
    for extension in extensions:
        style = extension.path / STYLE_FILE
        if not extension.enabled or not style.is_file():
            continue
        source = _read(extension, style)
        if source is not None:
            parts.append(f"/* extension: {extension.name.replace('*/', '')} */\n{source}")
    return "\n".join(parts)
