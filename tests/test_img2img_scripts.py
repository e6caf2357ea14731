"""Outpainting mk2, Poor man's outpainting, Loopback and SD upscale as img2img scripts, run through
/sdapi/v1/img2img on the tiny SD1 checkpoint."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from modules.generation.outpainting import denoising_schedule
from modules.generation.params import ParameterError


def gradient(width: int, height: int) -> Image.Image:
    rows, columns = np.mgrid[0:height, 0:width]
    array = np.stack([columns * 255 // width, rows * 255 // height, np.full((height, width), 60)], axis=2)
    return Image.fromarray(array.astype(np.uint8))


def encode(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def decode(text: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(text)))


@pytest.fixture(scope="module")
def client(api_app):
    from fastapi.testclient import TestClient

    with TestClient(api_app) as test_client:
        yield test_client


def post(client, script_name, script_args, image=None, **fields):
    body = {
        "prompt": "a field",
        "init_images": [encode(image or gradient(64, 64))],
        "width": 64,
        "height": 64,
        "steps": 2,
        "seed": 5,
        "sampler_name": "Euler",
        "denoising_strength": 0.6,
        "script_name": script_name,
        "script_args": script_args,
    }
    body.update(fields)
    return client.post("/sdapi/v1/img2img", json=body)


def ok(response):
    assert response.status_code == 200, response.text
    data = response.json()
    return [decode(item) for item in data["images"]], json.loads(data["info"])


# ---- the scripts are listed with A1111's titles and argument lists ----------------------------


def test_scripts_are_offered_on_img2img_only(client):
    listed = client.get("/sdapi/v1/scripts").json()
    for name in ("outpainting mk2", "poor man's outpainting", "loopback", "sd upscale"):
        assert name in listed["img2img"] and name not in listed["txt2img"]
    info = {item["name"]: item for item in client.get("/sdapi/v1/script-info").json() if item["is_img2img"]}
    labels = {
        name: [arg["label"] for arg in info[name]["args"]]
        for name in ("outpainting mk2", "poor man's outpainting", "loopback", "sd upscale")
    }
    assert labels["poor man's outpainting"] == ["Pixels to expand", "Mask blur", "Masked content", "Outpainting direction"]
    assert labels["loopback"] == [
        "Loops",
        "Final denoising strength",
        "Denoising strength curve",
        "Append interrogated prompt at each iteration",
    ]
    assert labels["outpainting mk2"][1:] == [
        "Pixels to expand",
        "Mask blur",
        "Outpainting direction",
        "Fall-off exponent (lower=higher detail)",
        "Color variation",
    ]
    assert labels["sd upscale"][1:] == ["Tile overlap", "Upscaler", "Scale Factor"]
    defaults = {name: [arg["value"] for arg in info[name]["args"]] for name in ("outpainting mk2", "loopback")}
    assert defaults["outpainting mk2"][1:] == [128, 8, ["left", "right", "up", "down"], 1.0, 0.05]
    assert defaults["loopback"] == [4, 0.5, "Linear", "None"]


# ---- each script runs and gives the expected image ---------------------------------------------


def test_poor_mans_outpainting_grows_the_canvas_and_keeps_the_original(client):
    source = gradient(64, 64)
    images, info = ok(post(client, "poor man's outpainting", [16, 2, 1, ["left", "down"]], image=source))
    assert len(images) == 1 and images[0].size == (80, 80)
    output = np.asarray(images[0].convert("RGB"))
    # the original sits at (16, 0); away from the repainted seam its pixels come back unchanged
    assert np.array_equal(output[0:50, 30:80], np.asarray(source)[0:50, 14:64])
    assert "Denoising strength: 0.6" in info["infotexts"][0] and "Seed: 5," in info["infotexts"][0]


def test_poor_mans_outpainting_accepts_the_masked_content_name_and_one_direction(client):
    images, _ = ok(post(client, "poor man's outpainting", [8, 0, "latent nothing", ["up"]]))
    assert [image.size for image in images] == [(64, 72)]


def test_outpainting_mk2_expands_every_chosen_direction(client):
    images, info = ok(post(client, "outpainting mk2", ["", 16, 4, ["left", "right", "up"], 1.0, 0.05]))
    assert len(images) == 1 and images[0].size == (96, 80)
    assert "Seed: 5," in info["infotexts"][0]


def test_outpainting_mk2_gives_one_image_per_batch_count(client):
    images, info = ok(post(client, "outpainting mk2", ["", 8, 0, ["down"], 0.5, 0.2], n_iter=2))
    assert [image.size for image in images] == [(64, 72), (64, 72)]
    assert info["all_seeds"][:2] == [5, 6]


def test_sd_upscale_multiplies_the_size_tile_by_tile(client):
    images, info = ok(post(client, "sd upscale", ["", 16, 1, 2.0], image=gradient(48, 40)))
    assert len(images) == 1 and images[0].size == (96, 80)
    text = info["infotexts"][0]
    assert "SD upscale overlap: 16" in text and "SD upscale upscaler: Lanczos" in text


def test_sd_upscale_takes_the_upscaler_by_name_and_a_fractional_scale(client):
    images, info = ok(post(client, "sd upscale", ["", 0, "Nearest", 1.5], image=gradient(64, 48)))
    assert images[0].size == (96, 72)
    assert "SD upscale upscaler: Nearest" in info["infotexts"][0]


def test_loopback_returns_every_loop_and_ends_on_the_final_image(client, app_context):
    app_context.options.set("return_grid", False)
    try:
        images, info = ok(post(client, "loopback", [3, 0.2, "Linear", "None"]))
    finally:
        app_context.options.set("return_grid", True)
    assert len(images) == 3 and all(image.size == (64, 64) for image in images)
    strengths = [text.split("Denoising strength: ")[1].split(",")[0] for text in info["infotexts"]]
    assert strengths == ["0.6", "0.4", "0.2"]
    assert [f"Seed: {5 + loop}," in text for loop, text in enumerate(info["infotexts"])] == [True] * 3
    assert "Denoising curve: Linear" in info["infotexts"][-1]


def test_loopback_feeds_each_result_back(client):
    """Loop 2 of a run equals loop 1 of a run started from loop 1's image with loop 2's seed and strength."""
    images, info = ok(post(client, "loopback", [2, 0.3, "Linear", "None"]))
    grid, first, second = images
    assert info["index_of_first_image"] == 1 and grid.size == (128, 64)
    again, _ = ok(post(client, "loopback", [1, 0.3, "Linear", "None"], image=first, seed=6, denoising_strength=0.3))
    assert np.array_equal(np.asarray(again[-1]), np.asarray(second))


def test_denoising_curves():
    assert denoising_schedule(0.6, 0.2, 3, "Linear") == pytest.approx([0.6, 0.4, 0.2])
    aggressive = denoising_schedule(0.0, 1.0, 3, "Aggressive")
    lazy = denoising_schedule(0.0, 1.0, 3, "Lazy")
    assert aggressive == pytest.approx([0.0, np.sin(np.pi / 4), 1.0]) and lazy == pytest.approx([0.0, 1 - np.cos(np.pi / 4), 1.0])
    assert denoising_schedule(0.7, 0.1, 1) == [0.7]
    with pytest.raises(ParameterError, match="^denoising_curve"):
        denoising_schedule(0.5, 0.5, 2, "Wavy")


# ---- bad arguments are a 422 naming the argument, and nothing is generated -----------------------


@pytest.mark.parametrize(
    ("script_name", "script_args", "field"),
    [
        ("poor man's outpainting", [4, 4, 0, ["left"]], "pixels"),
        ("poor man's outpainting", [16, 4, 7, ["left"]], "inpainting_fill"),
        ("poor man's outpainting", [16, 4, 0, ["sideways"]], "direction"),
        ("outpainting mk2", ["", 16, 4, [], 1.0, 0.05], "direction"),
        ("outpainting mk2", ["", 16, 4, ["left"], "lots", 0.05], "noise_q"),
        ("outpainting mk2", ["", 16, 4, ["left"], 1.0, 3], "color_variation"),
        ("loopback", [0, 0.5, "Linear", "None"], "loops"),
        ("loopback", [2, 1.5, "Linear", "None"], "final_denoising_strength"),
        ("loopback", [2, 0.5, "Wavy", "None"], "denoising_curve"),
        ("loopback", [2, 0.5, "Linear", "CLIP"], "append_interrogation"),
        ("sd upscale", ["", 64, 9, 2.0], "upscaler_index"),
        ("sd upscale", ["", 64, 1, 0.5], "scale_factor"),
        ("sd upscale", ["", 64, 1, 2.0], "overlap"),
    ],
)
def test_bad_arguments_are_a_422_naming_them(client, app_context, script_name, script_args, field):
    saved_before = len(list(app_context.paths.outputs_dir.rglob("*.png")))
    response = post(client, script_name, script_args, save_images=True)
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(f"{field}:")
    assert len(list(app_context.paths.outputs_dir.rglob("*.png"))) == saved_before


def test_only_the_finished_images_are_saved(client, app_context):
    samples = app_context.paths.outputs_dir / "img2img-images"
    grids = app_context.paths.outputs_dir / "img2img-grids"

    def counts():
        return len(list(samples.rglob("*.png"))), len(list(grids.rglob("*.png")))

    before = counts()
    images, _ = ok(post(client, "outpainting mk2", ["", 8, 2, ["left", "up"], 1.0, 0.05], save_images=True))
    after = counts()
    assert after == (before[0] + 1, before[1])  # two passes, one saved result
    saved = max(samples.rglob("*.png"), key=lambda path: path.stat().st_mtime_ns)
    assert Image.open(saved).size == images[0].size == (72, 72)
    assert "Seed: 5," in Image.open(saved).info["parameters"]

    ok(post(client, "sd upscale", ["", 16, 1, 2.0], image=gradient(48, 40), save_images=True))
    assert counts() == (after[0] + 1, after[1])  # four tiles, one saved result

    ok(post(client, "loopback", [2, 0.3, "Linear", "None"], save_images=True))
    assert counts() == (after[0] + 3, after[1] + 1)  # every loop and the loop grid
