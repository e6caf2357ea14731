"""Extension flags: each enabled extension's preload.py `preload(parser)` runs before flags are parsed.

Standard-library only, like modules/app/flags.py, because launch.py parses flags before the virtual
environment exists. Which extensions are enabled is read straight from the settings file
(config.json), since the settings object does not exist yet at this point.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import re
from pathlib import Path
from typing import Any

from modules.app.paths import build_paths
from modules.plugins.extensions import extension_folders, is_enabled

log = logging.getLogger(__name__)

PRELOAD_SCRIPT = "preload.py"


def read_settings_file(path: Path) -> dict[str, Any]:
    """The settings in config.json as a dict; {} when missing or unreadable (the app reports that later)."""
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def preload_extension(folder: Path, parser: argparse.ArgumentParser) -> bool:
    """Import folder/preload.py and call its `preload(parser)`; False (logged) when it fails."""
    script = folder / PRELOAD_SCRIPT
    module_name = "extension_preload_" + re.sub(r"\W", "_", folder.name)
    try:
        spec = importlib.util.spec_from_file_location(module_name, script)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {script}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        preload = getattr(module, "preload", None)
        if preload is None:
            return True
        preload(parser)
    except Exception as error:  # noqa: BLE001 - a broken extension must not stop the launch
        log.error("extension %s: preload.py failed and was skipped: %s: %s", folder.name, type(error).__name__, error)
        return False
    return True


def add_extension_flags(parser: argparse.ArgumentParser, early: argparse.Namespace) -> list[str]:
    """Run preload.py of every enabled extension on `parser`; returns the names that ran.

    `early` is the namespace from a first, tolerant parse of the command line: it gives --data-dir,
    --ui-settings-file and the --disable-*-extensions flags, which decide where extensions live and
    which are enabled.
    """
    paths = build_paths(early)
    settings = read_settings_file(paths.config_file)
    ran = []
    for folder, builtin in extension_folders(paths):
        if not (folder / PRELOAD_SCRIPT).is_file() or not is_enabled(folder.name, builtin, settings, early):
            continue
        if preload_extension(folder, parser):
            ran.append(folder.name)
    return ran
