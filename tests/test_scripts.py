"""The Script API on a real app: extension scripts and callbacks in a real generation on the tiny model."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from modules.generation.params import Txt2ImgParams
from modules.imaging.infotext import parse_infotext
from modules.plugins import runtime
from modules.plugins.callbacks import registry
from modules.plugins.system import ScriptSelection

FIXTURES = Path(__file__).parent / "fixtures" / "script_extensions"


def _png_base64() -> str:
    import base64
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "green").save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _params(**values) -> Txt2ImgParams:
    base = {"prompt": "a red cube", "steps": 3, "width": 64, "height": 64, "seed": 77, "sampler_name": "Euler", "cfg_scale": 7.0}
    base.update(values)
    return Txt2ImgParams.from_request(base)


@pytest.fixture(scope="module")
def script_app(tmp_path_factory, tiny_sd1_path, caplog_module):
    """An app whose extensions/ holds a working and a broken A1111-style extension."""
    from modules.app.context import create_context
    from modules.app.flags import parse_flags

    data_dir = tmp_path_factory.mktemp("scripts-data")
    (data_dir / "models" / "Stable-diffusion").mkdir(parents=True)
    shutil.copy(tiny_sd1_path, data_dir / "models" / "Stable-diffusion" / "tiny-sd1.safetensors")
    shutil.copytree(FIXTURES, data_dir / "extensions")
    previous = runtime.get_context()
    context = create_context(parse_flags(["--data-dir", str(data_dir), "--api", "--skip-install"]))
    yield context
    for script in (data_dir / "extensions").rglob("*.py"):
        registry.remove_script(str(script))
    runtime.set_context(previous)


@pytest.fixture(scope="module")
def caplog_module():
    """Log records of the whole module (startup happens once, in a module fixture)."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect(level=logging.ERROR)
    logging.getLogger("modules.plugins").addHandler(handler)
    yield records
    logging.getLogger("modules.plugins").removeHandler(handler)


def _good_module(context):
    return next(data.module for data in context.scripts.classes if data.script_class.__name__ == "CfgTweak")


def test_startup_survives_broken_extension_and_logs_its_name(script_app, caplog_module):
    assert Path(_good_module(script_app).BASEDIR).name == "good-ext"
    runner = script_app.scripts.txt2img
    titles = {script.name for script in runner.scripts}
    assert {"cfg tweak", "echo prompt", "broken process", "broken run"} <= titles
    runner.ensure_ui()
    assert "broken ui" not in {script.name for script in runner.scripts}, "a script whose ui() raises is dropped"
    messages = [record.getMessage() for record in caplog_module]
    assert any("extension broken-ext" in text and "a_import_error.py" in text for text in messages)
    assert any("extension broken-ext" in text and "ui()" in text for text in messages)


def test_alwayson_script_changes_cfg_and_infotext_and_counts_steps(script_app, caplog_module):
    module = _good_module(script_app)
    module.STEPS.clear()
    module.CALLS.clear()
    params = _params(batch_size=2, n_iter=2)
    processed = script_app.submit_txt2img(params, None, ScriptSelection())[1].result()
    assert len(processed.images) == 5  # grid + 4
    fields = parse_infotext(processed.infotexts[1])
    assert fields["CFG scale"] == "3.5"
    assert fields["CFG tweak"] == "3.5 (png)"
    assert '"CFG tweak": "3.5 (png)"' in processed.js()
    # Euler: one model evaluation per step, 3 steps per batch, 2 batches
    assert module.STEPS == [0, 1, 2, 0, 1, 2]
    assert module.CALLS[:4] == ["setup", "before_process", "process 4 a red cube", "before_process_batch 0"]
    assert "process_batch 1 79" in module.CALLS
    assert "postprocess_batch (2, 3, 64, 64)" in module.CALLS
    assert module.CALLS.count("postprocess_image") == 4
    assert module.CALLS[-1] == "postprocess 5"
    messages = [record.getMessage() for record in caplog_module]
    assert any("broken-ext" in text and "process" in text and "Broken process" in text for text in messages)
    assert any("broken-ext" in text and "callbacks_cfg_denoiser" in text for text in messages)


def test_alwayson_args_from_api_selection_and_disabled_script(script_app):
    selection = ScriptSelection(alwayson_scripts={"CFG tweak": {"args": [True, 2.5]}})
    processed = script_app.submit_txt2img(_params(), None, selection)[1].result()
    assert parse_infotext(processed.infotexts[0])["CFG scale"] == "2.5"
    off = ScriptSelection(alwayson_scripts={"cfg tweak": {"args": [False]}})
    processed = script_app.submit_txt2img(_params(), None, off)[1].result()
    fields = parse_infotext(processed.infotexts[0])
    assert fields["CFG scale"] == "7" and "CFG tweak" not in fields


def test_dropdown_script_run_replaces_processing(script_app):
    selection = ScriptSelection(script_name="Echo prompt", script_args=["a blue sphere"])
    processed = script_app.submit_txt2img(_params(), None, selection)[1].result()
    fields = parse_infotext(processed.infotexts[0])
    assert fields["Prompt"] == "a blue sphere"
    assert fields["Echo"] == "yes"
    assert fields["CFG scale"] == "3.5", "always-on scripts still run inside the dropdown script's processing"
    assert "echoed" in processed.comments


def test_failing_dropdown_script_falls_back_to_normal_processing(script_app):
    processed = script_app.submit_txt2img(_params(), None, ScriptSelection(script_name="broken run"))[1].result()
    assert len(processed.images) == 1
    assert parse_infotext(processed.infotexts[0])["Prompt"] == "a red cube"
    assert any("failed" in comment for comment in processed.comments)


def test_api_routes_scripts(script_app):
    from fastapi.testclient import TestClient

    from webui import create_app

    app, _ = create_app(script_app.flags, script_app)
    client = TestClient(app)
    listed = client.get("/sdapi/v1/scripts").json()
    assert "echo prompt" in listed["txt2img"] and "cfg tweak" in listed["img2img"]
    info = {(item["name"], item["is_img2img"]): item for item in client.get("/sdapi/v1/script-info").json()}
    tweak = info[("cfg tweak", False)]
    assert tweak["is_alwayson"] is True
    assert [arg["label"] for arg in tweak["args"]] == ["Enabled", "Scale"]
    assert tweak["args"][1]["value"] == 3.5

    body = {"prompt": "x", "steps": 2, "width": 64, "height": 64, "seed": 5, "sampler_name": "Euler"}
    response = client.post(
        "/sdapi/v1/txt2img",
        json={
            **body,
            "script_name": "echo prompt",
            "script_args": ["from the api"],
            "alwayson_scripts": {"CFG tweak": {"args": [True, 4]}},
        },
    )
    assert response.status_code == 200, response.text
    info_json = response.json()["info"]
    assert "from the api" in info_json and "CFG scale: 4," in info_json

    init = _png_base64()
    img2img = client.post("/sdapi/v1/img2img", json={**body, "init_images": [init], "alwayson_scripts": {"cfg tweak": {"args": [True, 6]}}})
    assert img2img.status_code == 200, img2img.text
    assert "CFG scale: 6," in img2img.json()["info"] and "CFG tweak: 6.0 (png)" in img2img.json()["info"]

    unknown = client.post("/sdapi/v1/txt2img", json={**body, "script_name": "no such script"})
    assert unknown.status_code == 422 and "script_name" in unknown.text
    bad_alwayson = client.post("/sdapi/v1/txt2img", json={**body, "alwayson_scripts": {"nope": {"args": []}}})
    assert bad_alwayson.status_code == 422 and "alwayson_scripts" in bad_alwayson.text


def test_generation_panel_renders_scripts_and_submits_their_values(script_app):
    import gradio as gr

    from modules.plugins.ui_scripts import selection_from_values
    from modules.ui.generation_panel import build_generation_panel
    from modules.ui.ui_config import UiConfig

    runner = script_app.scripts.txt2img
    _good_module(script_app).COMPONENTS.clear()
    with gr.Blocks():
        panel = build_generation_panel("txt2img", UiConfig(None), [], allow_open_folder=False, scripts=runner)
    titles = [choice[0] for choice in panel.script.choices]
    assert titles[0] == "None" and "Echo prompt" in titles and "CFG tweak" not in titles
    assert len(panel.script_inputs) == len(runner.default_args())
    assert _good_module(script_app).COMPONENTS == ["txt2img_prompt"]
    echo = runner.find("echo prompt")
    tweak = runner.find("cfg tweak")
    labels = [getattr(component, "label", None) for component in panel.script_inputs]
    assert labels[tweak.args_from : tweak.args_to] == ["Enabled", "Scale"]
    assert labels[echo.args_from] == "Text"
    data = {component: getattr(component, "value", None) for component in panel.script_inputs}
    data[panel.script] = "Echo prompt"
    data[panel.script_inputs[echo.args_from]] = "typed in the UI"
    data[panel.script_inputs[tweak.args_from + 1]] = 5
    processed = script_app.run_txt2img(_params(), None, selection_from_values(panel, data))
    fields = parse_infotext(processed.infotexts[0])
    assert fields["Prompt"] == "typed in the UI"
    assert fields["CFG scale"] == "5"
