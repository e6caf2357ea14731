"""ui-config.json: per-control defaults and limits, as in A1111.

Keys are `"<tab>/<label>/<property>"` (e.g. `"txt2img/Sampling steps/value"`). While the UI is built,
each control asks `UiConfig.apply` for its keyword arguments: a value found in the file replaces the
built-in one, and a missing key is recorded with the built-in value. `save_new_keys` rewrites the file
only when keys were added, keeping the user's edits.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from modules.imaging.saving import atomic_write_text

log = logging.getLogger(__name__)

PROPERTIES = ("value", "minimum", "maximum", "step", "visible")


class UiConfig:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.values: dict[str, Any] = {}
        self.added = False
        if path is not None and path.exists():
            try:
                loaded = json.loads(path.read_text(encoding="utf-8"))
                if isinstance(loaded, dict):
                    self.values = loaded
            except (OSError, ValueError) as error:
                log.warning("ui-config %s is unreadable (%s); using built-in defaults", path, error)

    def apply(self, tab: str, label: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Return `kwargs` with the file's values for this control; record missing keys."""
        result = dict(kwargs)
        for prop in PROPERTIES:
            key = f"{tab}/{label}/{prop}"
            if key in self.values:
                stored = self.values[key]
                if prop in result and callable(result[prop]):
                    continue
                if prop != "visible" and prop in result and not _same_kind(stored, result[prop]):
                    log.warning("ui-config %s: %r has the wrong type, ignored", key, stored)
                    continue
                result[prop] = stored
            elif prop in kwargs and not callable(kwargs[prop]):
                self.values[key] = kwargs[prop]
                self.added = True
        return result

    def save_new_keys(self) -> None:
        if self.path is None or not self.added:
            return
        atomic_write_text(self.path, json.dumps(self.values, indent=4, ensure_ascii=False))
        self.added = False


def _same_kind(stored: Any, builtin: Any) -> bool:
    if builtin is None:
        return True
    if isinstance(builtin, bool):
        return isinstance(stored, bool)
    if isinstance(builtin, (int, float)):
        return isinstance(stored, (int, float)) and not isinstance(stored, bool)
    return isinstance(stored, type(builtin))
