"""Build a throwaway git repository holding an A1111-style extension, for the extension tests."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

JS_MARKER = "extensionScriptMarker_5f3a"
CSS_MARKER = ".extension-style-marker-9c1e"
PRELOAD_FLAG = "--sample-extension-flag"

FILES = {
    "metadata.ini": "[Extension]\nName = Sample Extension\nRequires = other-one, another\n",
    "scripts/sample.py": "# a script file; loaded by the Script system\nTITLE = 'sample'\n",
    "javascript/sample.js": f"window.{JS_MARKER} = 'loaded'; // </script> inside a comment\n",
    "style.css": f"{CSS_MARKER} {{ color: rgb(1, 2, 3); }}\n",
    "install.py": (
        "import pathlib, sys\n"
        "import launch\n"
        "assert launch.is_installed('gitpython') and not launch.is_installed('no-such-package-x9')\n"
        "launch.run('true', desc='install step')\n"
        "pathlib.Path('installed.marker').write_text(sys.executable, encoding='utf-8')\n"
    ),
    "preload.py": f"def preload(parser):\n    parser.add_argument('{PRELOAD_FLAG}', type=str, default='unset', help='added by preload')\n",
}


def git(folder: Path, *arguments: str) -> str:
    """Run git in `folder` with a fixed identity; returns stdout."""
    environment = dict(os.environ)
    environment.update(
        GIT_AUTHOR_NAME="Test",
        GIT_AUTHOR_EMAIL="test@example.invalid",
        GIT_COMMITTER_NAME="Test",
        GIT_COMMITTER_EMAIL="test@example.invalid",
        GIT_CONFIG_NOSYSTEM="1",
        HOME=str(folder),
    )
    completed = subprocess.run(["git", *arguments], cwd=folder, env=environment, capture_output=True, text=True, check=True)  # noqa: S603, S607
    return completed.stdout.strip()


def write_files(folder: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def commit_all(folder: Path, message: str) -> str:
    """Commit everything in the repository; returns the new HEAD hash."""
    git(folder, "add", "-A")
    git(folder, "commit", "-q", "-m", message)
    return git(folder, "rev-parse", "HEAD")


def make_extension_repository(folder: Path, files: dict[str, str] | None = None) -> str:
    """Create a git repository (branch "main") with the sample extension; returns its first commit."""
    folder.mkdir(parents=True, exist_ok=True)
    git(folder, "init", "-q", "-b", "main")
    write_files(folder, FILES if files is None else files)
    return commit_all(folder, "first version")
