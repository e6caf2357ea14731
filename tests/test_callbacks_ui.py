"""UI-time callbacks of extensions: on_ui_tabs, before/after_component, token counter, optimizers, paste."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import gradio as gr
import pytest

from modules import script_callbacks
from modules.plugins.callbacks import loading_script
from modules.plugins.script_base import AlwaysVisible, Script, ScriptClassData

EXTENSION = ("extensions/test-ext/scripts/test_ext.py", "test-ext")
TAB_TITLE = "Test Extension Tab"


class PasteScript(Script):
    """An always-on script whose controls are filled from pasted infotext."""

    def __init__(self) -> None:
        self.seen_after: list[str] = []
        self.on_after_component(lambda event: self.seen_after.append(event.component.elem_id), elem_id="txt2img_prompt")

    def title(self) -> str:
        return "Paste test"

    def show(self, is_img2img: bool) -> object:
        return AlwaysVisible

    def ui(self, is_img2img: bool) -> list[Any]:
        self.strength = gr.Slider(0.0, 1.0, value=0.0, step=0.05, label="Paste strength", elem_id=self.elem_id("strength"))
        self.enabled = gr.Checkbox(value=False, label="Paste enabled", elem_id=self.elem_id("enabled"))
        self.note = gr.Textbox(value="", label="Paste note", elem_id=self.elem_id("note"))
        self.infotext_fields = [
            (self.strength, "Paste strength"),
            (self.enabled, lambda params: "Paste strength" in params),
            (self.note, "Paste note"),
        ]
        return [self.strength, self.enabled, self.note]


@dataclasses.dataclass
class Recorder:
    """What the test extension's callbacks saw."""

    before: list[str | None] = dataclasses.field(default_factory=list)
    after: list[Any] = dataclasses.field(default_factory=list)
    added: list[Any] = dataclasses.field(default_factory=list)
    pasted: list[str] = dataclasses.field(default_factory=list)
    callbacks: list[Any] = dataclasses.field(default_factory=list)


def _register(recorder: Recorder) -> None:
    def ui_tabs() -> list[tuple[Any, str, str]]:
        with gr.Blocks(analytics_enabled=False) as tab:
            gr.Markdown("Hello from the test extension", elem_id="test_ext_markdown")
        return [(tab, TAB_TITLE, "test_ext_tab")]

    def broken_ui_tabs() -> list[Any]:
        raise RuntimeError("broken tab")

    def before(component: Any, **kwargs: Any) -> None:
        recorder.before.append(kwargs.get("elem_id"))

    def after(component: Any, **kwargs: Any) -> None:
        recorder.after.append((kwargs.get("elem_id"), kwargs.get("label"), component))
        if kwargs.get("elem_id") == "txt2img_prompt":
            recorder.added.append(gr.Textbox(label="Added by extension", elem_id="test_ext_after_prompt"))

    def broken_after(component: Any, **kwargs: Any) -> None:
        raise ValueError("broken after_component")

    def infotext_pasted(infotext: str, params: dict[str, Any]) -> None:
        recorder.pasted.append(infotext)
        if "Old strength" in params:
            params["Paste strength"] = params.pop("Old strength")

    token = loading_script.set(EXTENSION)
    try:
        script_callbacks.on_ui_tabs(broken_ui_tabs)
        script_callbacks.on_ui_tabs(ui_tabs)
        script_callbacks.on_before_component(before)
        script_callbacks.on_after_component(broken_after)
        script_callbacks.on_after_component(after)
        script_callbacks.on_infotext_pasted(infotext_pasted)
    finally:
        loading_script.reset(token)
    recorder.callbacks = [ui_tabs, broken_ui_tabs, before, after, broken_after, infotext_pasted]


@pytest.fixture(scope="module")
def built(app_context, tmp_path_factory):
    """The page built once with the test extension's callbacks and the paste script registered."""
    from modules.plugins.system import ScriptSystem
    from modules.ui.blocks import build_ui

    recorder = Recorder()
    _register(recorder)
    path = tmp_path_factory.mktemp("scripts") / "paste_test.py"
    system = ScriptSystem([ScriptClassData(PasteScript, str(path), str(path.parent), None, "test-ext")])
    context = dataclasses.replace(app_context, scripts=system)
    handler = _Capture()
    logging.getLogger("modules.plugins.callbacks").addHandler(handler)
    try:
        demo = build_ui(context)
    finally:
        logging.getLogger("modules.plugins.callbacks").removeHandler(handler)
    yield demo, recorder, system, handler.messages
    for callback in recorder.callbacks:
        script_callbacks.remove_callbacks_for_function(callback)


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _by_elem_id(demo: gr.Blocks, elem_id: str) -> Any:
    return next(block for block in demo.blocks.values() if getattr(block, "elem_id", None) == elem_id)


def test_ui_tab_from_callback_is_in_the_page_after_builtin_tabs(built):
    demo, _, _, messages = built
    config = demo.get_config_file()
    labels = [component.get("props", {}).get("label") for component in config["components"] if component.get("type") == "tabitem"]
    assert TAB_TITLE in labels
    assert labels.index("PNG Info") < labels.index(TAB_TITLE) < labels.index("Settings")
    markdown = _by_elem_id(demo, "test_ext_markdown")
    assert "Hello from the test extension" in markdown.value
    assert any("test-ext" in message and "ui_tabs" in message for message in messages)


def test_after_component_sees_the_prompt_and_can_add_a_component(built):
    demo, recorder, system, messages = built
    prompt = _by_elem_id(demo, "txt2img_prompt")
    seen = {elem_id: component for elem_id, _, component in recorder.after}
    assert seen["txt2img_prompt"] is prompt
    assert ("txt2img_prompt", "Prompt") in {(elem_id, label) for elem_id, label, _ in recorder.after}
    assert "txt2img_steps" in recorder.before and "img2img_prompt" in seen
    assert [component.elem_id for component in recorder.added] == ["test_ext_after_prompt"]
    assert _by_elem_id(demo, "test_ext_after_prompt") is recorder.added[0]
    assert system.txt2img.scripts[0].seen_after == ["txt2img_prompt"]
    assert any("test-ext" in message and "broken_after" in message for message in messages)


def test_component_hook_is_removed_after_build(built):
    from gradio.components.base import Component

    from modules.plugins.component_hooks import hooks_installed

    _, recorder, _, _ = built
    count = len(recorder.before), len(recorder.after)
    with gr.Blocks():
        gr.Textbox(label="Later", elem_id="created_after_build")
    assert (len(recorder.before), len(recorder.after)) == count
    assert not hooks_installed()
    assert Component.__init__.__name__ != "announcing_init"


def test_hook_is_removed_when_the_build_fails(app_context):
    from modules.plugins.component_hooks import component_hooks, hooks_installed

    with pytest.raises(RuntimeError, match="boom"), component_hooks():
        assert hooks_installed()
        raise RuntimeError("boom")
    assert not hooks_installed()


def test_token_counter_callback_changes_the_count(app_context):
    from modules.ui.tokens import count_prompt_tokens

    seen: list[Any] = []

    def longer(params: Any) -> None:
        seen.append((params.prompt, params.steps, params.is_positive))
        params.prompt = params.prompt + " and a big blue sea"

    plain = count_prompt_tokens(app_context, "a small red boat", 20)
    script_callbacks.on_before_token_counter(longer)
    try:
        changed = count_prompt_tokens(app_context, "a small red boat", 20)
    finally:
        script_callbacks.remove_callbacks_for_function(longer)
    assert plain == (4, 75)
    assert changed == (9, 75)
    assert seen == [("a small red boat", 20, True)]


def test_list_optimizers_has_sdp_and_takes_extension_entries(app_context):
    from modules.plugins.callbacks import AttentionOptimizer, list_optimizers

    seen: list[list[str]] = []

    def add(optimizers: list[Any]) -> None:
        seen.append([item.name for item in optimizers])
        optimizers.append(AttentionOptimizer("test-attention", priority=5))

    assert [item.name for item in app_context.optimizers][:1] == ["sdp"]
    script_callbacks.on_list_optimizers(add)
    try:
        names = [item.name for item in list_optimizers()]
    finally:
        script_callbacks.remove_callbacks_for_function(add)
    assert seen == [["sdp"]]
    assert names == ["sdp", "test-attention"]


def _paste_handler(demo: gr.Blocks, trigger: Any, target: Any) -> Any:
    """The event function that `trigger`'s click runs with `target` among its outputs."""
    for function in demo.fns.values():
        if trigger._id in {block_id for block_id, _ in function.targets} and target in function.outputs:
            return function.fn
    raise AssertionError("no paste handler fills the script's components")


def test_infotext_fields_fill_script_components_on_paste(built):
    demo, recorder, system, _ = built
    script = system.txt2img.scripts[0]
    paste_button = _by_elem_id(demo, "txt2img_paste")
    handler = _paste_handler(demo, paste_button, script.strength)
    text = "a cat\nSteps: 5, Seed: 1, Old strength: 0.35, Paste note: hello"
    updates = handler(text, None, None)
    assert updates == {script.strength: 0.35, script.enabled: True, script.note: "hello"}
    assert text in recorder.pasted
    assert handler("just a prompt", None, None) == {}


def test_infotext_pasted_callback_changes_the_generation_fields(built):
    from modules.ui.paste import fields_from_infotext

    _, recorder, _, _ = built

    def steps_from_old_key(infotext: str, params: dict[str, Any]) -> None:
        params["Steps"] = params.pop("Old steps", params.get("Steps"))

    script_callbacks.on_infotext_pasted(steps_from_old_key)
    try:
        fields = fields_from_infotext("a dog\nOld steps: 7, Seed: 3, CFG scale: 6")
    finally:
        script_callbacks.remove_callbacks_for_function(steps_from_old_key)
    assert fields["steps"] == 7 and fields["seed"] == 3 and fields["prompt"] == "a dog"


def test_script_paste_values_convert_to_the_component_types():
    from modules.plugins.script_runner import ScriptRunner
    from modules.plugins.ui_scripts import script_paste_updates

    runner = ScriptRunner([ScriptClassData(PasteScript, "paste_test.py", ".", None, "test-ext")], is_img2img=False)
    with gr.Blocks():
        runner.create_ui()
    script = runner.scripts[0]
    assert script_paste_updates(runner, {"Paste strength": "0.5"}) == {script.strength: 0.5, script.enabled: True}
    assert script_paste_updates(runner, {"Paste strength": "not a number"}) == {script.enabled: True}
    assert script_paste_updates(runner, {}) == {script.enabled: False}


def test_png_info_send_to_fills_script_components(built):
    demo, _, system, _ = built
    script = system.img2img.scripts[0]
    for elem_id in ("pnginfo_send_to_img2img", "pnginfo_send_to_inpaint"):
        handler = _paste_handler(demo, _by_elem_id(demo, elem_id), script.strength)
        updates = handler(None, "a cat\nSteps: 5, Seed: 1, Paste strength: 0.8")
        assert updates == {script.strength: 0.8, script.enabled: True}
    to_txt2img = _paste_handler(demo, _by_elem_id(demo, "pnginfo_send_to_txt2img"), system.txt2img.scripts[0].note)
    assert to_txt2img(None, "a cat\nSteps: 5, Seed: 1, Paste note: from png") == {
        system.txt2img.scripts[0].note: "from png",
        system.txt2img.scripts[0].enabled: False,
    }


class _Options:
    def __init__(self, amount: float) -> None:
        self.amount = amount

    def get(self, key: str, default: Any = None) -> Any:
        return self.amount if key == "img2img_extra_noise" else default


def test_extra_noise_callback_may_replace_the_noise():
    import torch

    from modules.generation.img2img import with_extra_noise

    seen: list[tuple[float, float, float]] = []

    def doubled(params: Any) -> None:
        seen.append((float(params.noise.sum()), float(params.x.sum()), float(params.xi.sum())))
        params.noise = params.noise * 2

    noise, x = torch.ones(1, 4, 2, 2), torch.zeros(1, 4, 2, 2)
    xi = x + noise * 3
    script_callbacks.on_extra_noise(doubled)
    try:
        assert torch.equal(with_extra_noise(_Options(0.0), noise, x, xi), xi)
        assert seen == []
        result = with_extra_noise(_Options(0.5), noise, x, xi)
    finally:
        script_callbacks.remove_callbacks_for_function(doubled)
    assert seen == [(16.0, 0.0, 48.0)]
    assert torch.allclose(result, torch.full_like(xi, 4.0))


def test_extension_tab_title_is_served_in_config(app_flags, app_context):
    from fastapi.testclient import TestClient

    from webui import create_app

    recorder = Recorder()
    _register(recorder)
    try:
        app, _ = create_app(app_flags, app_context)
        config = TestClient(app).get("/config").json()
    finally:
        for callback in recorder.callbacks:
            script_callbacks.remove_callbacks_for_function(callback)
    labels = [component.get("props", {}).get("label") for component in config["components"]]
    assert TAB_TITLE in labels
