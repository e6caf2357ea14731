"""The Extensions tab: the installed extensions (built-in and user), as a table.

Installing and updating extensions belongs to the plugin system; this tab lists what is on disk.
"""

from __future__ import annotations

import html
import subprocess
from pathlib import Path

import gradio as gr

from modules.app.context import AppContext


def _git_revision(folder: Path) -> str:
    if not (folder / ".git").exists():
        return ""
    try:
        completed = subprocess.run(  # noqa: S603
            ["git", "-C", str(folder), "rev-parse", "--short", "HEAD"],  # noqa: S607
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return completed.stdout.strip()


def list_extensions(context: AppContext) -> list[tuple[str, str, str, bool]]:
    """(name, folder, revision, built-in) for every extension folder."""
    found = []
    for folder, builtin in ((context.paths.extensions_builtin_dir, True), (context.paths.extensions_dir, False)):
        if not folder.is_dir():
            continue
        for child in sorted(folder.iterdir()):
            if child.is_dir() and not child.name.startswith("."):
                found.append((child.name, str(child), _git_revision(child), builtin))
    return found


def extensions_table_html(context: AppContext) -> str:
    rows = list_extensions(context)
    if not rows:
        return f"<p>No extensions installed. Put extensions into <code>{html.escape(str(context.paths.extensions_dir))}</code>.</p>"
    body = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{html.escape(folder)}</td><td>{html.escape(revision)}</td>"
        f"<td>{'built-in' if builtin else ''}</td></tr>"
        for name, folder, revision, builtin in rows
    )
    return f"<table id='extensions'><thead><tr><th>Extension</th><th>Folder</th><th>Version</th><th></th></tr></thead><tbody>{body}</tbody></table>"


def build_extensions_tab(context: AppContext) -> None:
    with gr.Tab("Installed", elem_id="extensions_installed_tab"):
        refresh = gr.Button("Check for extensions", elem_id="extensions_refresh")
        table = gr.HTML(lambda: extensions_table_html(context), elem_id="extensions_installed_html")
    refresh.click(lambda: extensions_table_html(context), outputs=[table])
