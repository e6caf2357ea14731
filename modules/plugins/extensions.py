"""Extension discovery: folders in extensions/ and extensions-builtin/, their metadata and git state.

An extension is a folder in A1111's layout (scripts/*.py, javascript/*.js, style.css, install.py,
preload.py, metadata.ini). Which ones are enabled is kept in the settings under A1111's keys
"disabled_extensions" (folder names) and "disable_all_extensions" ("none", "extra" or "all"); the
flags --disable-all-extensions and --disable-extra-extensions win over the settings for one run.

Importing this module needs only the standard library; gitpython is imported when git state is read.
"""

from __future__ import annotations

import argparse
import configparser
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modules.app.paths import Paths

log = logging.getLogger(__name__)

DISABLED_EXTENSIONS_KEY = "disabled_extensions"
DISABLE_ALL_EXTENSIONS_KEY = "disable_all_extensions"
DISABLE_ALL_CHOICES = ("none", "extra", "all")
METADATA_FILE = "metadata.ini"


@dataclass
class GitState:
    """What git says about an extension folder; empty strings when it is not a git checkout."""

    remote: str = ""
    branch: str = ""
    commit_hash: str = ""
    commit_date: str = ""

    @property
    def version(self) -> str:
        """The short commit hash shown in the Extensions tab (first 8 hex digits, as A1111)."""
        return self.commit_hash[:8]


@dataclass
class Extension:
    """One extension folder.

    `name` is the folder name (what "disabled_extensions" stores); `display_name` comes from
    metadata.ini's `[Extension] Name` when present. `enabled` is the state for this run.
    """

    name: str
    path: Path
    is_builtin: bool
    enabled: bool = True
    metadata: configparser.ConfigParser = field(default_factory=configparser.ConfigParser)
    git: GitState = field(default_factory=GitState)
    status: str = "unknown"

    @property
    def display_name(self) -> str:
        return self.metadata.get("Extension", "Name", fallback=self.name) or self.name

    @property
    def requires(self) -> list[str]:
        """Other extensions named by metadata.ini's `[Extension] Requires` (comma separated)."""
        raw = self.metadata.get("Extension", "Requires", fallback="")
        return [part.strip() for part in raw.split(",") if part.strip()]

    @property
    def remote(self) -> str:
        return self.git.remote

    @property
    def branch(self) -> str:
        return self.git.branch

    @property
    def commit_hash(self) -> str:
        return self.git.commit_hash

    @property
    def is_git(self) -> bool:
        return (self.path / ".git").exists()

    def files(self, folder: str, suffix: str) -> list[Path]:
        """Files with `suffix` directly in `folder` of the extension, sorted by name."""
        directory = self.path / folder
        if not directory.is_dir():
            return []
        return sorted(child for child in directory.iterdir() if child.is_file() and child.suffix.lower() == suffix)

    def script_files(self) -> list[Path]:
        """scripts/*.py, the files the Script system loads."""
        return self.files("scripts", ".py")

    def refresh_git_state(self) -> GitState:
        """Read remote URL, branch and commit from the folder's git repository (kept on `self.git`)."""
        self.git = read_git_state(self.path)
        return self.git


def read_metadata(folder: Path) -> configparser.ConfigParser:
    """Parse metadata.ini; a missing or unreadable file gives an empty parser (logged)."""
    parser = configparser.ConfigParser(interpolation=None)
    source = folder / METADATA_FILE
    if source.is_file():
        try:
            parser.read(source, encoding="utf-8")
        except (configparser.Error, OSError, UnicodeDecodeError) as error:
            log.warning("extension %s: unreadable %s: %s", folder.name, METADATA_FILE, error)
            return configparser.ConfigParser(interpolation=None)
    return parser


def read_git_state(folder: Path) -> GitState:
    """Remote URL, branch and HEAD commit of a git checkout; empty for other folders or on errors."""
    if not (folder / ".git").exists():
        return GitState()
    try:
        import git

        repository = git.Repo(folder)
        try:
            head = repository.head.commit
        except ValueError:
            return GitState()
        remote = ""
        if repository.remotes:
            remote = next(iter(repository.remotes[0].urls), "")
        branch = "" if repository.head.is_detached else repository.active_branch.name
        date = datetime.fromtimestamp(head.committed_date, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
        return GitState(remote=remote, branch=branch, commit_hash=head.hexsha, commit_date=date)
    except Exception as error:  # noqa: BLE001 - a broken checkout must not break the listing
        log.warning("extension %s: cannot read git state: %s", folder.name, error)
        return GitState()


def disabled_names(settings: Any) -> set[str]:
    """The folder names in the "disabled_extensions" setting (an `Options` or a plain dict)."""
    value = settings.get(DISABLED_EXTENSIONS_KEY, []) if settings is not None else []
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",")]
    return {str(item) for item in (value or []) if str(item)}


def disable_all_mode(settings: Any, flags: argparse.Namespace | None = None) -> str:
    """ "none", "extra" or "all": the flags win over the "disable_all_extensions" setting."""
    if flags is not None and getattr(flags, "disable_all_extensions", False):
        return "all"
    if flags is not None and getattr(flags, "disable_extra_extensions", False):
        return "extra"
    value = settings.get(DISABLE_ALL_EXTENSIONS_KEY, "none") if settings is not None else "none"
    return value if value in DISABLE_ALL_CHOICES else "none"


def is_enabled(name: str, is_builtin: bool, settings: Any, flags: argparse.Namespace | None = None) -> bool:
    """Whether the extension folder `name` runs in this session."""
    mode = disable_all_mode(settings, flags)
    if mode == "all" or (mode == "extra" and not is_builtin):
        return False
    return name not in disabled_names(settings)


def extension_folders(paths: Paths) -> list[tuple[Path, bool]]:
    """(folder, is_builtin) for each extension folder: built-in ones first, each group sorted by name."""
    found: list[tuple[Path, bool]] = []
    for root, builtin in ((paths.extensions_builtin_dir, True), (paths.extensions_dir, False)):
        if not root.is_dir():
            continue
        for child in sorted(root.iterdir(), key=lambda item: item.name.lower()):
            if child.is_dir() and not child.name.startswith("."):
                found.append((child, builtin))
    return found


def list_extensions(paths: Paths, options: Any, flags: argparse.Namespace | None = None, *, read_git: bool = True) -> list[Extension]:
    """Every extension on disk with its metadata, git state and enabled state.

    `options` is the app's `Options` (or a dict of settings); `flags` adds the
    --disable-all-extensions / --disable-extra-extensions overrides. A folder name seen in both
    extensions-builtin/ and extensions/ is listed once, the built-in one winning.
    """
    extensions: list[Extension] = []
    seen: set[str] = set()
    for folder, builtin in extension_folders(paths):
        if folder.name in seen:
            log.warning("extension %s in %s ignored: a built-in extension has the same name", folder.name, folder.parent)
            continue
        seen.add(folder.name)
        extension = Extension(
            name=folder.name,
            path=folder,
            is_builtin=builtin,
            enabled=is_enabled(folder.name, builtin, options, flags),
            metadata=read_metadata(folder),
        )
        if read_git:
            extension.refresh_git_state()
        extensions.append(extension)
    return extensions


def enabled_extensions(paths: Paths, options: Any, flags: argparse.Namespace | None = None) -> list[Extension]:
    """The extensions that run in this session (no git state read)."""
    return [extension for extension in list_extensions(paths, options, flags, read_git=False) if extension.enabled]


def set_enabled(options: Any, extensions: list[Extension], enabled_names: list[str], disable_all: str | None = None) -> list[str]:
    """Store which extensions are enabled in the settings and save them; returns the disabled names.

    Names not in `extensions` are refused with a `ValueError` naming them, and nothing is changed.
    """
    known = {extension.name for extension in extensions}
    unknown = sorted(set(enabled_names) - known)
    if unknown:
        raise ValueError(f"enabled extensions: no such extension: {', '.join(unknown)}")
    if disable_all is not None and disable_all not in DISABLE_ALL_CHOICES:
        raise ValueError(f"disable_all_extensions: {disable_all!r} is not one of {', '.join(DISABLE_ALL_CHOICES)}")
    disabled = sorted(known - set(enabled_names))
    changes: dict[str, Any] = {DISABLED_EXTENSIONS_KEY: disabled}
    if disable_all is not None:
        changes[DISABLE_ALL_EXTENSIONS_KEY] = disable_all
    options.update(changes)
    options.save()
    return disabled
