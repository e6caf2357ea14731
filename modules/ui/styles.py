"""Prompt styles kept in styles.csv, in A1111's format (columns name, prompt, negative_prompt).

A style's prompt may contain `{prompt}`: the user's prompt is put there; otherwise the style text is
appended after a comma. The file is read on every call so edits made outside the UI show up.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from modules.imaging.saving import atomic_write_text

PROMPT_PLACEHOLDER = "{prompt}"
COLUMNS = ("name", "prompt", "negative_prompt")


class StyleError(ValueError):
    """A style could not be saved; the message names the field."""


@dataclass(frozen=True)
class PromptStyle:
    name: str
    prompt: str = ""
    negative_prompt: str = ""


def merge_style_text(style_text: str, text: str) -> str:
    """Put `text` into the style: at `{prompt}` when present, else style appended after a comma."""
    if PROMPT_PLACEHOLDER in style_text:
        return style_text.replace(PROMPT_PLACEHOLDER, text)
    if not style_text.strip():
        return text
    if not text.strip():
        return style_text
    return f"{text}, {style_text}"


class StyleDatabase:
    """Read and write styles.csv."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, PromptStyle]:
        if not self.path.exists():
            return {}
        styles: dict[str, PromptStyle] = {}
        with open(self.path, encoding="utf-8-sig", newline="") as handle:
            for row in csv.DictReader(handle):
                name = (row.get("name") or "").strip()
                if name:
                    styles[name] = PromptStyle(name, row.get("prompt") or "", row.get("negative_prompt") or "")
        return styles

    def names(self) -> list[str]:
        return list(self.load())

    def apply(self, prompt: str, negative_prompt: str, names: list[str]) -> tuple[str, str]:
        """The prompt and negative prompt with the named styles merged in, in the order given."""
        styles = self.load()
        for name in names:
            style = styles.get(name)
            if style is None:
                raise StyleError(f"styles: no style named {name!r}")
            prompt = merge_style_text(style.prompt, prompt)
            negative_prompt = merge_style_text(style.negative_prompt, negative_prompt)
        return prompt, negative_prompt

    def save_style(self, style: PromptStyle) -> None:
        """Add or replace one style, writing the file atomically."""
        if not style.name.strip():
            raise StyleError("style name: must not be empty")
        styles = self.load()
        styles[style.name.strip()] = PromptStyle(style.name.strip(), style.prompt, style.negative_prompt)
        self._write(list(styles.values()))

    def delete_style(self, name: str) -> None:
        styles = self.load()
        if styles.pop(name, None) is not None:
            self._write(list(styles.values()))

    def _write(self, styles: list[PromptStyle]) -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(COLUMNS)
        for style in styles:
            writer.writerow([style.name, style.prompt, style.negative_prompt])
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, buffer.getvalue())
