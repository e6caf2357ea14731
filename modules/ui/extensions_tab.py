"""The Extensions tab: installed extensions (enable/disable, check for updates, update), install from
a git URL, and the "Available" list from an extension index.

The handlers are plain functions over the `AppContext` (tested without a browser); `build_extensions_tab`
only wires them to Gradio components. Install and update are refused while the server listens on the
network without a password, unless --enable-insecure-extension-access is given.
"""

from __future__ import annotations

import html
from typing import Any

import gradio as gr

from modules.app.context import AppContext
from modules.plugins.extension_index import DEFAULT_INDEX_URL, ExtensionIndexError, load_index
from modules.plugins.extension_install import (
    ExtensionInstallError,
    UpdateCheck,
    check_for_updates,
    insecure_access_refusal,
    install_extension,
    update_extension,
)
from modules.plugins.extensions import DISABLE_ALL_CHOICES, Extension, disable_all_mode, list_extensions, set_enabled

RESTART_NOTE = "Restart the web UI for the change to take effect."


def _message(text: str, error: bool = False) -> str:
    css_class = "extension-message error" if error else "extension-message"
    return f"<p class='{css_class}'>{html.escape(text)}</p>"


def installed_extensions(context: AppContext) -> list[Extension]:
    return list_extensions(context.paths, context.options, context.flags)


def installed_table_html(context: AppContext, checks: dict[str, UpdateCheck] | None = None) -> str:
    """The installed extensions as a table: name, URL, branch, version, date, update status."""
    extensions = installed_extensions(context)
    if not extensions:
        folder = html.escape(str(context.paths.extensions_dir))
        return f"<p>No extensions installed. Install one below or put extensions into <code>{folder}</code>.</p>"
    checks = checks or {}
    rows = []
    for extension in extensions:
        check = checks.get(extension.name)
        status = check.status if check else extension.status
        if check and check.message:
            status = f"{status}: {check.message}"
        state = "enabled" if extension.enabled else "disabled"
        kind = "built-in" if extension.is_builtin else ""
        cells = [
            extension.display_name,
            extension.remote,
            extension.branch,
            extension.git.version,
            extension.git.commit_date,
            status,
            state,
            kind,
        ]
        rows.append("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in cells) + "</tr>")
    header = "".join(f"<th>{title}</th>" for title in ("Extension", "URL", "Branch", "Version", "Date", "Update", "State", ""))
    return f"<table id='extensions'><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def apply_enabled(context: AppContext, enabled_names: list[str], disable_all: str) -> str:
    """Persist the checked extensions as enabled (the others go to "disabled_extensions")."""
    try:
        disabled = set_enabled(context.options, installed_extensions(context), list(enabled_names or []), disable_all)
    except ValueError as error:
        return _message(str(error), error=True)
    listed = ", ".join(disabled) if disabled else "none"
    return _message(f"Saved. Disabled extensions: {listed}. Disable all: {disable_all}. {RESTART_NOTE}")


def check_updates(context: AppContext) -> tuple[str, list[str]]:
    """Fetch every git extension; returns the table with statuses and the names that are behind."""
    checks = {extension.name: check_for_updates(extension) for extension in installed_extensions(context) if extension.is_git}
    behind = [name for name, check in checks.items() if check.status == "behind"]
    return installed_table_html(context, checks), behind


def update_selected(context: AppContext, names: list[str]) -> str:
    """Update the named extensions; one line per extension with the old and new commit."""
    refusal = insecure_access_refusal(context.flags)
    if refusal:
        return _message(refusal, error=True)
    if not names:
        return _message('Nothing selected to update: press "Check for updates" first.', error=True)
    by_name = {extension.name: extension for extension in installed_extensions(context)}
    lines = []
    for name in names:
        extension = by_name.get(name)
        if extension is None:
            lines.append(_message(f"extension {name}: not installed", error=True))
            continue
        before = extension.git.version
        try:
            commit = update_extension(extension)
        except ExtensionInstallError as error:
            lines.append(_message(str(error), error=True))
            continue
        lines.append(_message(f"Updated {name}: {before} → {commit[:8]} ({commit}). {RESTART_NOTE}"))
    return "".join(lines)


def install_from_url(context: AppContext, url: str, branch: str, folder_name: str) -> str:
    """Clone the extension; the message names the folder and commit, or says why it was refused."""
    refusal = insecure_access_refusal(context.flags)
    if refusal:
        return _message(refusal, error=True)
    try:
        target = install_extension(url, context.paths, branch=branch or "", folder_name=folder_name or "")
    except ExtensionInstallError as error:
        return _message(str(error), error=True)
    extension = next((item for item in installed_extensions(context) if item.path == target), None)
    version = extension.git.version if extension else ""
    return _message(f"Installed into {target} (commit {version}). {RESTART_NOTE}")


def available_html(context: AppContext, index_url: str) -> str:
    """The index at `index_url` as a table (installed ones marked), or a message saying why not."""
    try:
        index = load_index(index_url)
    except ExtensionIndexError as error:
        return _message(str(error), error=True)
    installed = {extension.remote for extension in installed_extensions(context) if extension.remote}
    not_installed = {entry.url for entry in index.not_installed(installed)}
    rows = []
    for entry in index.extensions:
        state = "" if entry.url in not_installed else "installed"
        tags = ", ".join(entry.tags)
        rows.append(
            f"<tr><td><a href='{html.escape(entry.url, quote=True)}' target='_blank' rel='noreferrer'>{html.escape(entry.name)}</a>"
            f"<br><code>{html.escape(entry.url)}</code></td><td>{html.escape(entry.description)}</td>"
            f"<td>{html.escape(tags)}</td><td>{html.escape(entry.added)}</td><td>{state}</td></tr>"
        )
    header = "<tr><th>Extension</th><th>Description</th><th>Tags</th><th>Added</th><th></th></tr>"
    return f"<p>{len(index.extensions)} extensions in the index.</p><table id='available_extensions'><thead>{header}</thead><tbody>{''.join(rows)}</tbody></table>"


def _enabled_choices(context: AppContext) -> tuple[list[str], list[str]]:
    extensions = installed_extensions(context)
    names = [extension.name for extension in extensions]
    disabled = set(context.options.get("disabled_extensions") or [])
    return names, [name for name in names if name not in disabled]


def build_extensions_tab(context: AppContext) -> None:
    """Build the tab's components and wire them to the handlers above."""
    refusal = insecure_access_refusal(context.flags)
    names, enabled = _enabled_choices(context)
    with gr.Tab("Installed", elem_id="extensions_installed_tab"):
        if refusal:
            gr.HTML(_message(refusal, error=True), elem_id="extensions_refusal")
        with gr.Row():
            apply_button = gr.Button("Apply", variant="primary", elem_id="extensions_apply")
            check_button = gr.Button("Check for updates", elem_id="extensions_check")
        enabled_box = gr.CheckboxGroup(names, value=enabled, label="Enabled extensions", elem_id="extensions_enabled")
        disable_all = gr.Radio(
            list(DISABLE_ALL_CHOICES),
            value=disable_all_mode(context.options),
            label="Disable all extensions",
            elem_id="extensions_disable_all",
        )
        table = gr.HTML(lambda: installed_table_html(context), elem_id="extensions_installed_html")
        update_box = gr.CheckboxGroup([], label="Extensions with updates", elem_id="extensions_update_selection")
        update_button = gr.Button("Update selected", interactive=refusal is None, elem_id="extensions_update")
        installed_message = gr.HTML("", elem_id="extensions_installed_message")
    with gr.Tab("Available", elem_id="extensions_available_tab"):
        with gr.Row():
            index_url = gr.Textbox(DEFAULT_INDEX_URL, label="Extension index URL", elem_id="extensions_index_url", scale=4)
            load_button = gr.Button("Load from:", elem_id="extensions_load_index", scale=1)
        available = gr.HTML("", elem_id="extensions_available_html")
    with gr.Tab("Install from URL", elem_id="extensions_install_tab"):
        install_url = gr.Textbox(label="URL for extension's git repository", elem_id="extensions_install_url")
        install_branch = gr.Textbox(label="Specific branch name (leave empty for default)", elem_id="extensions_install_branch")
        install_folder = gr.Textbox(
            label="Local directory name (leave empty for the repository's name)", elem_id="extensions_install_dirname"
        )
        install_button = gr.Button("Install", variant="primary", interactive=refusal is None, elem_id="extensions_install")
        install_message = gr.HTML(_message(refusal, error=True) if refusal else "", elem_id="extensions_install_result")

    def on_apply(chosen: list[str], mode: str) -> tuple[str, str]:
        return apply_enabled(context, chosen, mode), installed_table_html(context)

    def on_check() -> tuple[str, Any]:
        table_html, behind = check_updates(context)
        return table_html, gr.update(choices=behind, value=behind)

    def on_update(chosen: list[str]) -> tuple[str, str]:
        return update_selected(context, chosen), installed_table_html(context)

    def on_install(url: str, branch: str, folder: str) -> tuple[str, str, Any]:
        message = install_from_url(context, url, branch, folder)
        all_names, now_enabled = _enabled_choices(context)
        return message, installed_table_html(context), gr.update(choices=all_names, value=now_enabled)

    apply_button.click(on_apply, inputs=[enabled_box, disable_all], outputs=[installed_message, table])
    check_button.click(on_check, outputs=[table, update_box])
    update_button.click(on_update, inputs=[update_box], outputs=[installed_message, table])
    load_button.click(lambda url: available_html(context, url), inputs=[index_url], outputs=[available])
    install_button.click(on_install, inputs=[install_url, install_branch, install_folder], outputs=[install_message, table, enabled_box])
