"""The scripts' part of a generation tab: the Script dropdown's entries and each script's ui().

`render_scripts(panel, runner)` is called by the generation panel while its Blocks are open. It
fills the Script dropdown, renders every always-on script's components in a group and every
dropdown script's components in a group shown only while that script is chosen, and sets
`panel.script_inputs` (the dropdown first, then all script components in argument order).
`selection_from_values(panel, data)` turns the submitted values into a `ScriptSelection`.
`wire_script_paste(...)` fills the scripts' `infotext_fields` components when infotext is pasted.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from modules.plugins.component_hooks import announce_existing, hooks_installed
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
    if not hooks_installed():
        announce_existing(runner, [*panel.fields.values(), panel.script])


def selection_from_values(panel: Any, data: dict[Any, Any]) -> ScriptSelection | None:
    """The chosen script and all script arguments from a Gradio submit's `data` (None without scripts)."""
    inputs = getattr(panel, "script_inputs", None)
    if not inputs:
        return None
    return ScriptSelection(flat_args=[data.get(component) for component in inputs])


def script_paste_targets(runner: ScriptRunner | None) -> list[Any]:
    """The components the tab's scripts fill from a pasted infotext (their `infotext_fields`)."""
    targets: list[Any] = []
    for script in list(runner.scripts) if runner is not None else []:
        for entry in script.infotext_fields or []:
            component = entry[0] if isinstance(entry, (tuple, list)) and len(entry) == 2 else None
            if component is not None and component not in targets:
                targets.append(component)
    return targets


def script_paste_updates(runner: ScriptRunner | None, params: dict[str, Any]) -> dict[Any, Any]:
    """Component → value for every script `infotext_fields` entry the parsed infotext `params` carries.

    An entry is (component, infotext key) or (component, callable(params) -> value); a missing key or
    a None result leaves the component alone. Values are converted to the type of the component's
    current value (bool, int, float, str); one that does not convert is skipped."""
    updates: dict[Any, Any] = {}
    for script in list(runner.scripts) if runner is not None else []:
        for entry in script.infotext_fields or []:
            if not isinstance(entry, (tuple, list)) or len(entry) != 2:
                continue
            component, key = entry
            if callable(key):
                ok, value = guarded(script, "infotext_fields callable", key, params)
                if not ok:
                    continue
            else:
                value = params.get(key)
            if value is None:
                continue
            converted = _converted(value, getattr(component, "value", None))
            if converted is not None:
                updates[component] = converted
    return updates


def _converted(value: Any, current: Any) -> Any:
    try:
        if isinstance(current, bool):
            return value if isinstance(value, bool) else str(value).strip().lower() in ("true", "1", "yes", "on")
        if isinstance(current, int) and not isinstance(value, bool):
            return int(float(value))
        if isinstance(current, float):
            return float(value)
        if isinstance(current, str) and not isinstance(value, str):
            return str(value)
    except (TypeError, ValueError):
        return None
    return value


def wire_script_paste(txt2img: Any, img2img: Any, pnginfo: Any, scripts: Any) -> None:
    """Fill the scripts' `infotext_fields` components wherever an infotext is pasted into a tab: the ↙
    button, PNG Info's send-to buttons and the galleries' send-to-img2img/inpaint buttons. Each paste
    parses the text with the on_infotext_pasted callbacks applied (modules/ui/paste.py)."""
    if scripts is None:
        return
    from modules.ui.paste import looks_like_infotext, pasted_infotext  # noqa: PLC0415 - UI-only dependency

    def updates_for(runner: ScriptRunner, text: str | None) -> dict[Any, Any]:
        return script_paste_updates(runner, pasted_infotext(text)) if text else {}

    def result_text(result: Any, selected: int | None) -> str:
        return result.infotext(selected) if result is not None else ""

    info_inputs = [pnginfo.image, pnginfo.generation_info]
    for panel, runner, sends in (
        (txt2img, scripts.txt2img, [pnginfo.send_to_txt2img]),
        (img2img, scripts.img2img, [pnginfo.send_to_img2img, pnginfo.send_to_inpaint]),
    ):
        targets = script_paste_targets(runner)
        if not targets:
            continue

        def on_paste(prompt: str, result: Any, selected: int | None, runner: ScriptRunner = runner) -> dict[Any, Any]:
            return updates_for(runner, prompt if looks_like_infotext(prompt) else result_text(result, selected))

        results = panel.results
        panel.paste.click(on_paste, inputs=[panel.fields["prompt"], results.result, results.selected], outputs=targets)
        for button in sends:
            button.click(lambda path, text, runner=runner: updates_for(runner, text), inputs=info_inputs, outputs=targets)
        if panel is img2img:
            for source in (txt2img, img2img):
                for button in (source.results.send_to_img2img, source.results.send_to_inpaint):
                    button.click(
                        lambda result, selected, runner=runner: updates_for(runner, result_text(result, selected)),
                        inputs=[source.results.result, source.results.selected],
                        outputs=targets,
                    )
