"""The UI's pieces without a browser: styles.csv, infotext paste, ui-config.json, live previews,
progress text, settings apply, PNG Info escaping, img2img masks, token counts and the file-route safety."""

from __future__ import annotations

import argparse
import json
from types import SimpleNamespace

import pytest
import torch
from PIL import Image, PngImagePlugin

from modules.app.options import Options
from modules.generation.previews import cheap_approximation
from modules.ui.img2img_tab import InputError, images_for_mode
from modules.ui.paste import fields_from_infotext
from modules.ui.pnginfo_tab import read_image_info
from modules.ui.progress import format_eta, progress_html
from modules.ui.settings_tab import apply_settings, setting_matches
from modules.ui.styles import PromptStyle, StyleDatabase, StyleError
from modules.ui.tokens import count_prompt_tokens, token_counter_text
from modules.ui.ui_config import UiConfig


def test_styles_round_trip_in_a1111_format(tmp_path):
    database = StyleDatabase(tmp_path / "styles.csv")
    database.save_style(PromptStyle("cinematic", "cinematic photo of {prompt}, film grain", "cartoon"))
    database.save_style(PromptStyle("sharp", "sharp focus, 8k", ""))
    assert (tmp_path / "styles.csv").read_text().splitlines()[0] == "name,prompt,negative_prompt"
    assert database.names() == ["cinematic", "sharp"]
    prompt, negative = database.apply("a dog", "blurry", ["cinematic", "sharp"])
    assert prompt == "cinematic photo of a dog, film grain, sharp focus, 8k"
    assert negative == "blurry, cartoon"
    with pytest.raises(StyleError, match="no style named 'missing'"):
        database.apply("a", "", ["missing"])
    with pytest.raises(StyleError, match="style name"):
        database.save_style(PromptStyle("  ", "x"))
    assert database.names() == ["cinematic", "sharp"]


def test_paste_reads_every_field_and_splits_old_sampler_names():
    fields = fields_from_infotext(
        "castle\nNegative prompt: fog\nSteps: 12, Sampler: DPM++ 2M Karras, CFG scale: 6.5, Seed: 99, Size: 640x384, Clip skip: 2"
    )
    assert fields["prompt"] == "castle" and fields["negative_prompt"] == "fog"
    assert (fields["steps"], fields["sampler_name"], fields["scheduler"]) == (12, "DPM++ 2M", "Karras")
    assert (fields["cfg_scale"], fields["seed"], fields["width"], fields["height"]) == (6.5, 99, 640, 384)
    assert fields["CLIP_stop_at_last_layers"] == 2
    assert fields["subseed"] == -1 and fields["subseed_strength"] == 0.0
    broken = fields_from_infotext("x\nSteps: many, Sampler: Nonexistent, Seed: 5, Size: 64x64")
    assert "steps" not in broken and "sampler_name" not in broken and broken["seed"] == 5


def test_ui_config_records_new_keys_and_keeps_user_values(tmp_path):
    path = tmp_path / "ui-config.json"
    first = UiConfig(path)
    assert first.apply("txt2img", "Sampling steps", {"value": 20, "minimum": 1, "maximum": 150}) == {
        "value": 20,
        "minimum": 1,
        "maximum": 150,
    }
    first.save_new_keys()
    stored = json.loads(path.read_text())
    assert stored["txt2img/Sampling steps/value"] == 20
    stored["txt2img/Sampling steps/value"] = 30
    stored["txt2img/Sampling steps/maximum"] = "oops"
    path.write_text(json.dumps(stored))
    before = path.read_text()
    second = UiConfig(path)
    applied = second.apply("txt2img", "Sampling steps", {"value": 20, "minimum": 1, "maximum": 150})
    assert applied == {"value": 30, "minimum": 1, "maximum": 150}
    second.save_new_keys()
    assert path.read_text() == before
    second.apply("img2img", "Denoising strength", {"value": 0.75})
    second.save_new_keys()
    assert json.loads(path.read_text())["img2img/Denoising strength/value"] == 0.75
    assert json.loads(path.read_text())["txt2img/Sampling steps/value"] == 30


def test_cheap_preview_is_the_published_linear_map():
    latent = torch.zeros(4, 2, 3)
    latent[0] = 1.0
    image = cheap_approximation(latent, "sd1")
    assert image.size == (3, 2)
    expected = tuple(int((value + 1) / 2 * 255) for value in (0.298, 0.207, 0.208))
    assert image.getpixel((0, 0)) == expected
    assert cheap_approximation(latent, "sdxl").getpixel((0, 0)) == tuple(int((v + 1) / 2 * 255) for v in (0.3448, 0.4168, 0.4395))


@pytest.mark.parametrize(("method", "size"), [("Approx cheap", (8, 8)), ("Full", (64, 64))])
def test_txt2img_stores_live_previews_on_the_job(app_context, method, size):
    from modules.generation.params import Txt2ImgParams

    params = Txt2ImgParams(
        prompt="preview",
        steps=4,
        width=64,
        height=64,
        seed=1,
        do_not_save_samples=True,
        do_not_save_grid=True,
        override_settings={"show_progress_every_n_steps": 2, "show_progress_type": method},
    )
    app_context.run_txt2img(params, task_id=f"task(preview-{size[0]})")
    job = app_context.jobs.find(f"task(preview-{size[0]})")
    assert job.preview_step == 4
    assert job.current_image.size == size


def test_progress_text_has_eta_and_is_escaped():
    from modules.app.jobs import Job

    job = Job(id="x", job_count=2, job_no=1, sampling_step=5, sampling_steps=10, started_at=1.0)
    text = progress_html(job)
    assert "75%" in text and "ETA: " in text and "Batch 2 of 2" in text and "Step 5/10" in text
    assert "Waiting" in progress_html(None, 3) and "3 ahead" in progress_html(None, 3)
    assert (format_eta(5), format_eta(125), format_eta(3725)) == ("5s", "2m 05s", "1h 02m")


def test_apply_settings_validates_all_then_saves_atomically(tmp_path):
    options = Options()
    options.path = tmp_path / "config.json"
    context = SimpleNamespace(options=options)
    message = apply_settings(context, {"jpeg_quality": 90, "samples_format": "bmp"})
    assert "samples_format" in message and "error" in message
    assert options.jpeg_quality == 80 and not options.path.exists()
    message = apply_settings(context, {"jpeg_quality": 90.0, "samples_format": "webp", "quicksettings_list": ["sd_vae"]})
    assert "3 settings changed" in message
    saved = json.loads(options.path.read_text())
    assert saved == {"jpeg_quality": 90, "samples_format": "webp", "quicksettings_list": ["sd_vae"]}
    assert not list(tmp_path.glob("*.tmp*"))
    assert apply_settings(context, {"jpeg_quality": 90}) == "<p>Nothing changed.</p>"
    assert setting_matches("JPEG", "jpeg_quality", "Quality for saved jpeg", "Saving")
    assert not setting_matches("vae", "jpeg_quality", "Quality for saved jpeg", "Saving")


def test_pnginfo_escapes_hostile_text(tmp_path):
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "<script>alert(1)</script>\nSteps: 3, Seed: 1, Size: 64x64")
    path = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    shown, raw = read_image_info(str(path))
    assert "<script>" not in shown and "&lt;script&gt;alert(1)&lt;/script&gt;" in shown
    assert raw.startswith("<script>alert(1)</script>")
    (tmp_path / "b.txt").write_text("not an image")
    shown, raw = read_image_info(str(tmp_path / "b.txt"))
    assert "Not an image" in shown and raw == ""


def test_img2img_modes_build_image_and_mask():
    base = Image.new("RGB", (16, 16), "white")
    stroke = Image.new("RGBA", (16, 16), (0, 0, 0, 0))
    stroke.putpixel((3, 4), (255, 0, 0, 255))
    editor = {"background": base, "layers": [stroke], "composite": base}
    data = {"image": None, "sketch": None, "inpaint": editor, "inpaint_sketch": None, "upload_image": None, "upload_mask": None}
    image, mask = images_for_mode(2, data)
    assert image.size == (16, 16) and mask.getpixel((3, 4)) == 255 and mask.getpixel((0, 0)) == 0
    with pytest.raises(InputError, match="img2img image"):
        images_for_mode(0, data)
    painted = base.copy()
    painted.putpixel((5, 5), (0, 0, 255))
    data["inpaint_sketch"] = {"background": base, "layers": [], "composite": painted}
    image, mask = images_for_mode(3, data)
    assert mask.getpixel((5, 5)) == 255 and mask.getpixel((4, 4)) == 0


def test_token_counter(app_context):
    assert token_counter_text(0) == "0/75"
    assert token_counter_text(80) == "80/150"
    assert count_prompt_tokens(app_context, "a small red boat") == (4, 75)
    assert count_prompt_tokens(app_context, "") == (0, 75)
    count, limit = count_prompt_tokens(app_context, "word " * 80)
    assert count == 80 and limit == 150


def test_ui_config_values_reach_the_built_page(app_context, tmp_path):
    from modules.ui.blocks import build_ui

    path = app_context.paths.ui_config_file
    original = path.read_text() if path.exists() else None
    try:
        path.write_text(json.dumps({"txt2img/Sampling steps/value": 33, "txt2img/Sampling steps/maximum": 90}))
        demo = build_ui(app_context)
        steps = next(block for block in demo.blocks.values() if getattr(block, "elem_id", None) == "txt2img_steps")
        assert (steps.value, steps.maximum) == (33, 90)
        stored = json.loads(path.read_text())
        assert stored["txt2img/Sampling steps/value"] == 33 and "txt2img/Width/value" in stored
    finally:
        if original is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(original)


def test_file_routes_and_password(app_flags, app_context):
    from fastapi.testclient import TestClient

    from webui import create_app

    flags = argparse.Namespace(**{**vars(app_flags), "gradio_auth": "user:secret"})
    app, _ = create_app(flags, app_context)
    client = TestClient(app)
    assert client.get("/config").status_code == 401
    assert client.post("/login", data={"username": "user", "password": "wrong"}).status_code == 400
    assert client.post("/login", data={"username": "user", "password": "secret"}).status_code == 200
    outputs = app_context.paths.outputs_dir
    outputs.mkdir(parents=True, exist_ok=True)
    (outputs / "allowed.txt").write_text("fine")
    link = outputs / "escape.txt"
    if not link.is_symlink():
        link.symlink_to(app_context.paths.config_file)
    app_context.options.save()
    assert client.get(f"/gradio_api/file={outputs / 'allowed.txt'}").text == "fine"
    for forbidden in ["/etc/passwd", f"{outputs}/../config.json", str(link), str(app_context.paths.config_file)]:
        assert client.get(f"/gradio_api/file={forbidden}").status_code == 403, forbidden
    link.unlink()


@pytest.mark.parametrize(
    ("listen", "server_name", "local"),
    [(False, None, True), (False, "127.0.0.1", True), (True, None, False), (False, "0.0.0.0", False), (False, "192.168.1.5", False)],
)
def test_open_folder_is_offered_only_on_localhost(listen, server_name, local):
    from modules.ui.blocks import bound_to_localhost

    context = SimpleNamespace(flags=argparse.Namespace(listen=listen, server_name=server_name))
    assert bound_to_localhost(context) is local


def test_save_and_zip_keep_the_infotext(tmp_path):
    import zipfile

    from modules.imaging.metadata import read_infotext
    from modules.ui.results_panel import GenerationResult, save_selected, zip_images

    result = GenerationResult(
        images=[Image.new("RGB", (8, 8), "red"), Image.new("RGB", (8, 8), "blue")],
        infotexts=["one\nSteps: 1, Seed: 1", "two\nSteps: 1, Seed: 2"],
        seeds=[1, 2],
        subseeds=[5, 6],
    )
    (path,) = save_selected(result, 1, tmp_path / "log")
    with Image.open(path) as saved:
        assert read_infotext(saved) == "two\nSteps: 1, Seed: 2"
    assert len(save_selected(result, None, tmp_path / "log")) == 2
    with zipfile.ZipFile(zip_images(result, tmp_path / "zips")) as archive:
        assert archive.namelist() == ["00000.png", "00001.png"]
    assert (result.seed_of(1), result.seed_of(1, subseed=True)) == (2, 6)
    with pytest.raises(ValueError, match="nothing to save"):
        save_selected(GenerationResult(), None, tmp_path / "log")
