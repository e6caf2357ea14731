"""script_callbacks and the A1111 compatibility modules, against the running tiny-model app."""

from __future__ import annotations

import logging

import pytest
from PIL import Image

from modules.plugins import runtime
from modules.plugins.callbacks import loading_script, registry


@pytest.fixture
def app(app_context):
    """The session app as the facades' current app; registrations made by a test are removed after it."""
    previous = runtime.get_context()
    runtime.set_context(app_context)
    token = loading_script.set(("test-callbacks.py", "test-ext"))
    yield app_context
    loading_script.reset(token)
    registry.remove_script("test-callbacks.py")
    runtime.set_context(previous)


def test_facade_imports_and_typical_uses(app):
    from modules import images, processing, script_callbacks, scripts, sd_samplers, shared
    from modules.generation_parameters_copypaste import parse_generation_parameters
    from modules.ui_components import FormRow, ToolButton  # noqa: F401

    assert shared.opts.samples_format == "png"
    assert shared.opts.data["samples_format"] == "png"
    shared.opts.add_option("test_ext_strength", shared.OptionInfo(0.5, "Strength", section=("test", "Test")))
    assert shared.opts.test_ext_strength == 0.5
    section = shared.options_section(("test-ext", "Test extension"), {"test_ext_other": shared.OptionInfo(True, "Other")})
    assert section["test_ext_other"].section == ("test-ext", "Test extension")
    assert shared.cmd_opts.api is True
    assert shared.sd_model is not None and shared.sd_model.is_sd1 and not shared.sd_model.is_sdxl
    assert shared.state.interrupted is False and shared.state.job_count == 0
    assert "Euler a" in [sampler.name for sampler in sd_samplers.samplers]
    assert sd_samplers.find_sampler_config("k_euler_a") is sd_samplers.all_samplers_map["Euler a"]
    assert issubclass(scripts.Script, object) and scripts.AlwaysVisible is not None
    assert scripts.scripts_txt2img is app.scripts.txt2img
    assert callable(script_callbacks.on_cfg_denoiser) and callable(images.save_image)
    fields = parse_generation_parameters("a cat\nNegative prompt: dog\nSteps: 5, Sampler: Euler, CFG scale: 6, Size: 64x80")
    assert fields["Prompt"] == "a cat" and fields["Steps"] == "5" and fields["Size-2"] == "80"
    p = processing.StableDiffusionProcessingTxt2Img(prompt="x", steps=4, cfg_scale=5.0, width=64, height=64, seed=-1)
    processing.fix_seed(p)
    assert p.seed >= 0 and p.params.steps == 4


def test_process_images_fires_all_cfg_callbacks_and_copy_keeps_p_apart(app):
    import copy

    from modules import processing, script_callbacks

    loaded = []
    script_callbacks.on_model_loaded(lambda sd_model: loaded.append(sd_model.is_sd1))
    app.scripts._model_seen = None
    seen: dict[str, list[int]] = {"denoiser": [], "denoised": [], "after": []}
    script_callbacks.on_cfg_denoiser(lambda params: seen["denoiser"].append(params.sampling_step))
    script_callbacks.on_cfg_denoised(lambda params: seen["denoised"].append(params.x.shape[0]))
    script_callbacks.on_cfg_after_cfg(lambda params: seen["after"].append(params.total_sampling_steps))
    p = processing.StableDiffusionProcessingTxt2Img(prompt="a tree", steps=2, width=64, height=64, seed=3, sampler_name="Euler")
    p.do_not_save_samples = True
    other = copy.copy(p)
    other.cfg_scale = 2.0
    other.extra_generation_params["Copied"] = "yes"
    processed = processing.process_images(other)
    assert p.cfg_scale == 7.0 and "Copied" not in p.extra_generation_params
    assert "CFG scale: 2" in processed.infotexts[0] and "Copied: yes" in processed.infotexts[0]
    assert seen == {"denoiser": [0, 1], "denoised": [2, 2], "after": [2, 2]}
    assert other.all_seeds == [3] and other.all_prompts == ["a tree"]
    assert loaded == [True]
    processing.process_images(other)
    assert loaded == [True], "fired once per newly loaded model"


def test_callbacks_are_isolated_and_attributed(app, caplog):
    from modules import script_callbacks

    calls = []

    def broken(*args):
        raise RuntimeError("boom")

    script_callbacks.on_app_started(broken)
    script_callbacks.on_app_started(lambda demo, fastapi_app: calls.append(fastapi_app))
    with caplog.at_level(logging.ERROR):
        script_callbacks.app_started_callback(None, "the app")
    assert calls == ["the app"]
    assert any("extension test-ext" in record.getMessage() and "broken" in record.getMessage() for record in caplog.records)
    with pytest.raises(TypeError, match="callable"):
        script_callbacks.on_model_loaded("not a function")
    script_callbacks.remove_current_script_callbacks()
    assert not any(entry.script == "test-callbacks.py" for entry in registry.lists["callbacks_app_started"])


def test_image_callbacks_around_save_and_grid(app, tmp_path):
    from modules import images, script_callbacks

    events = []

    def before(params):
        events.append(("before", params.pnginfo.get("parameters")))
        params.image = params.image.convert("L")

    script_callbacks.on_before_image_saved(before)
    script_callbacks.on_image_saved(lambda params: events.append(("saved", params.filename)))
    script_callbacks.on_image_grid(lambda params: setattr(params, "rows", 1))
    path, text_path = images.save_image(Image.new("RGB", (16, 16), "red"), str(tmp_path), "", seed=9, prompt="red", info="red\nSteps: 1")
    assert events[0] == ("before", "red\nSteps: 1")
    assert events[1] == ("saved", path) and path.endswith(".png")
    saved = Image.open(path)
    assert saved.mode == "L" and saved.info["parameters"] == "red\nSteps: 1"
    grid = images.image_grid([Image.new("RGB", (8, 8))] * 4)
    assert grid.size == (32, 8)
    geninfo, _ = images.read_info_from_image(saved)
    assert geninfo == "red\nSteps: 1"
