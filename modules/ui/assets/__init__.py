"""The page's own JavaScript and CSS, injected into the Gradio page head."""

from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parent


def stylesheet() -> str:
    return (ASSETS / "style.css").read_text(encoding="utf-8")


def page_head() -> str:
    """A <script> with the shortcuts, emphasis editing and image-drop handling."""
    script = (ASSETS / "script.js").read_text(encoding="utf-8").replace("</script", "<\\/script")
    return f"<script>{script}</script>"
