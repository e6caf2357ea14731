"""The scripts' part of a generation tab: the Script dropdown's entries and each script's ui().

`render_scripts(panel, runner)` is called by the generation panel while its Blocks are open. It
fills the Script dropdown, renders every always-on script's components in a group and every
dropdown script's components in a group shown only while that script is chosen, and sets
`panel.script_inputs` (the dropdown first, then all script components in argument order).
`selection_from_values(panel, data)` turns the submitted values into a `ScriptSelection`.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from modules.plugins.callbacks import registry
from modules.plugins.script_base import OnComponent
from modules.plugins.script_runner import ScriptRunner, guarded
from modules.plugins.system import ScriptSelection

NONE_CHOICE = "None"


def render_scripts(panel: Any, runner: ScriptRunner) -> None:
    """Build the script components under `panel.script` (see the module docstring)."""
    runner.ensure_ui()
    defaults = runner.default_args()
    inputs: list[Any] = [panel.script]
    groups: list[Any] = []
    with panel.script_container:
        for script in list(runner.alwayson_scripts) + list(runner.selectable_scripts):
            start, end = script.args_from or 0, script.args_to or 0
            with gr.Group(visible=bool(script.alwayson), elem_id=f"{panel.tab}_script_{script.name}") as group:
                ok, controls = guarded(script, "ui()", script.ui, runner.is_img2img)
            controls = list(controls or []) if ok else []
            if len(controls) != end - start:
                controls = [gr.State(value) for value in defaults[start:end]]
            inputs.extend(controls)
            if not script.alwayson:
                groups.append(group)
    panel.script_inputs = inputs
    titles = runner.titles()
    panel.script.choices = [(NONE_CHOICE, NONE_CHOICE)] + [(title, title) for title in titles]

    def show(choice: str) -> list[Any]:
        return [gr.update(visible=choice == title) for title in titles]

    if groups:
        panel.script.change(show, inputs=[panel.script], outputs=groups)
    announce_components(runner, [*panel.fields.values(), panel.script])


def announce_components(runner: ScriptRunner, components: list[Any]) -> None:
    """Tell scripts and on_after_component callbacks about components already on the page (A1111 does
    this as each component is created; here it happens once the tab's fields exist)."""
    for component in components:
        elem_id = getattr(component, "elem_id", None)
        kwargs = {"elem_id": elem_id, "label": getattr(component, "label", None)}
        registry.fire("callbacks_after_component", component, **kwargs)
        for script in list(runner.scripts):
            guarded(script, "after_component()", script.after_component, component, **kwargs)
            for wanted, callback in script.on_after_component_elem_id or []:
                if wanted == elem_id:
                    guarded(script, "on_after_component callback", callback, OnComponent(component=component))


def selection_from_values(panel: Any, data: dict[Any, Any]) -> ScriptSelection | None:
    """The chosen script and all script arguments from a Gradio submit's `data` (None without scripts)."""
    inputs = getattr(panel, "script_inputs", None)
    if not inputs:
        return None
    return ScriptSelection(flat_args=[data.get(component) for component in inputs])
