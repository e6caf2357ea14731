"""The Settings tab, generated from the option registry: one group per section, a search box that
hides non-matching settings, Apply settings (validated all together, then saved atomically to
config.json) and Reset to defaults (fills the controls; Apply saves).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from modules.app.context import AppContext
from modules.app.options import OptionError
from modules.models.safe_load import CheckpointError
from modules.ui.setting_components import component_value_to_setting, setting_component, setting_label

# Settings shown read-only here: they belong to the quicksettings / loader flow.
SKIPPED_KEYS = ("sd_model_checkpoint",)


@dataclass
class SettingsTab:
    components: dict[str, Any] = field(default_factory=dict)
    sections: dict[str, Any] = field(default_factory=dict)
    search: Any = None
    apply: Any = None
    reset: Any = None
    result: Any = None


def setting_matches(query: str, key: str, label: str, section_title: str) -> bool:
    query = (query or "").strip().lower()
    return not query or query in key.lower() or query in label.lower() or query in section_title.lower()


def apply_settings(context: AppContext, submitted: dict[str, Any]) -> str:
    """Validate every changed value, apply them all, save config.json; returns an HTML message."""
    options = context.options
    changes = {}
    for key, value in submitted.items():
        info = options.infos[key]
        value = component_value_to_setting(info, value)
        if isinstance(info.default, list) and isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if value != options.get(key):
            changes[key] = value
    try:
        changed = options.update(changes)
        options.save()
    except (OptionError, CheckpointError, OSError) as error:
        return f"<div class='notice error'>{html.escape(str(error))}</div>"
    if not changed:
        return "<p>Nothing changed.</p>"
    return f"<p>{len(changed)} settings changed: {html.escape(', '.join(changed))}.</p>"


def build_settings_tab(context: AppContext) -> SettingsTab:
    tab = SettingsTab()
    options = context.options
    with gr.Row(elem_id="settings_top"):
        tab.apply = gr.Button("Apply settings", variant="primary", elem_id="settings_submit")
        tab.reset = gr.Button("Reset to defaults", elem_id="settings_reset")
    tab.result = gr.HTML(elem_id="settings_result")
    tab.search = gr.Textbox(label="Search", placeholder="Search settings", elem_id="settings_search")
    by_section: dict[tuple[str, str], list[str]] = {}
    for key, info in options.infos.items():
        if key not in SKIPPED_KEYS:
            by_section.setdefault(info.section, []).append(key)
    for (section_id, title), keys in by_section.items():
        with gr.Group(elem_id=f"settings_{section_id}") as group:
            gr.Markdown(f"### {title}", elem_classes=["settings-section-title"])
            for key in keys:
                tab.components[key] = setting_component(key, options.infos[key], options)
        tab.sections[section_id] = (title, keys, group)
    return tab


def wire_settings_tab(tab: SettingsTab, context: AppContext, quick_components: dict[str, Any]) -> None:
    options = context.options
    keys = list(tab.components)
    controls = [tab.components[key] for key in keys]
    quick_keys = [key for key in quick_components if key in tab.components]

    def on_apply(*values: Any) -> list[Any]:
        message = apply_settings(context, dict(zip(keys, values, strict=True)))
        return [message, *[options.get(key) for key in quick_keys]]

    tab.apply.click(on_apply, inputs=controls, outputs=[tab.result, *[quick_components[key] for key in quick_keys]])

    def on_reset() -> list[Any]:
        values = []
        for key in keys:
            default = options.infos[key].default
            if isinstance(default, list) and key != "quicksettings_list":
                default = ", ".join(str(item) for item in default)
            values.append(default)
        return [*values, "<p>Defaults filled in; press Apply settings to save them.</p>"]

    tab.reset.click(on_reset, outputs=[*controls, tab.result])

    section_groups = [group for _, _, group in tab.sections.values()]

    def on_search(query: str) -> list[Any]:
        updates = []
        section_updates = []
        for title, section_keys, _ in tab.sections.values():
            visible_any = False
            for key in section_keys:
                match = setting_matches(query, key, setting_label(key, options.infos[key]), title)
                visible_any |= match
                updates.append(gr.update(visible=match))
            section_updates.append(gr.update(visible=visible_any))
        return updates + section_updates

    ordered = [tab.components[key] for _, section_keys, _ in tab.sections.values() for key in section_keys]
    tab.search.change(on_search, inputs=[tab.search], outputs=ordered + section_groups, trigger_mode="always_last", show_progress="hidden")
