"""POST /sdapi/v1/img2img through FastAPI's TestClient, and the img2img batch directory."""

import base64
import io

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from modules.api.img2img_route import create_img2img_router
from modules.generation.img2img_batch import run_batch
from modules.generation.params import Img2ImgParams
from modules.imaging.infotext import parse_infotext
from modules.imaging.metadata import read_infotext


def encode(image: Image.Image, image_format: str = "PNG") -> str:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return base64.b64encode(buffer.getvalue()).decode()


def decode(text: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(text)))


def gradient(width: int, height: int) -> Image.Image:
    rows, columns = np.mgrid[0:height, 0:width]
    array = np.stack([columns * 255 // width, rows * 255 // height, np.full((height, width), 90)], axis=2)
    return Image.fromarray(array.astype(np.uint8))


@pytest.fixture(scope="module")
def client(app_context):
    app = FastAPI()
    app.include_router(create_img2img_router(app_context))
    return TestClient(app)


BASE = {"prompt": "a house", "steps": 3, "width": 64, "height": 64, "seed": 11, "sampler_name": "Euler", "cfg_scale": 5}


def test_inpainting_request_round_trips_a1111_fields(client):
    image = gradient(80, 64)
    mask = Image.new("L", (80, 64))
    mask.paste(255, (30, 20, 50, 40))
    body = dict(
        BASE,
        init_images=["data:image/png;base64," + encode(image)],
        mask=encode(mask),
        mask_blur=0,
        inpainting_fill=1,
        inpaint_full_res=True,
        inpaint_full_res_padding=6,
        inpainting_mask_invert=0,
        resize_mode=0,
        denoising_strength=0.6,
        include_init_images=False,
    )
    response = client.post("/sdapi/v1/img2img", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    result = decode(data["images"][0])
    assert result.size == (80, 64)
    outside = np.asarray(mask) == 0
    assert np.array_equal(np.asarray(result.convert("RGB"))[outside], np.asarray(image)[outside])
    fields = parse_infotext(read_infotext(result))
    assert fields["Denoising strength"] == "0.6" and fields["Mask blur"] == "0"
    assert fields["Inpaint area"] == "Only masked" and fields["Masked area padding"] == "6"
    assert data["parameters"]["init_images"] is None and data["parameters"]["mask"] is None
    assert data["parameters"]["denoising_strength"] == 0.6 and data["parameters"]["inpaint_full_res_padding"] == 6
    info = data["info"]
    assert '"denoising_strength": 0.6' in info and '"seed": 11' in info


def test_img2img_request_with_resize_mode_name_and_echoed_images(client):
    encoded = encode(gradient(40, 100))
    body = dict(BASE, init_images=[encoded], resize_mode="Crop and resize", denoising_strength=0.4, include_init_images=True)
    response = client.post("/sdapi/v1/img2img", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    assert decode(data["images"][0]).size == (64, 64)
    assert data["parameters"]["init_images"] == [encoded]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"init_images": []}, "init_images"),
        ({"init_images": ["not base64 at all!"]}, "init_images[0]"),
        ({"mask": base64.b64encode(b"garbage").decode()}, "mask"),
        ({"denoising_strength": 1.5}, "denoising_strength"),
        ({"inpainting_fill": 9}, "inpainting_fill"),
        ({"resize_mode": "Stretch a lot"}, "resize_mode"),
        ({"image_cfg_scale": "high"}, "image_cfg_scale"),
    ],
)
def test_bad_input_is_422_naming_the_field(client, change, field):
    body = dict(BASE, init_images=[encode(gradient(64, 64))])
    body.update(change)
    response = client.post("/sdapi/v1/img2img", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(field + ":"), response.json()["detail"]


def test_batch_directory_skips_a_corrupt_file_and_writes_outputs(app_context, tmp_path):
    inputs, masks, outputs = tmp_path / "in", tmp_path / "masks", tmp_path / "out"
    inputs.mkdir()
    masks.mkdir()
    gradient(64, 64).save(inputs / "a.png")
    gradient(96, 64).save(inputs / "b.jpg")
    (inputs / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    (inputs / "notes.txt").write_text("ignored")
    mask = Image.new("L", (64, 64))
    mask.paste(255, (0, 0, 32, 64))
    mask.save(masks / "a.png")
    mask.save(masks / "c.png")
    seen = []
    params = Img2ImgParams.from_request(
        dict(BASE, init_images=[gradient(8, 8)], denoising_strength=0.5, mask_blur=0, inpaint_full_res=False)
    )
    result = run_batch(
        app_context.run_img2img, params, inputs, outputs, masks, progress=lambda done, total, name: seen.append((done, total))
    )
    assert [path.name for path in result.saved] == ["a.png", "b.png"]
    assert len(result.errors) == 1 and result.errors[0].startswith("broken.png: init_images:")
    assert seen[0] == (0, 3) and seen[-1] == (3, 3)
    masked = np.asarray(Image.open(outputs / "a.png").convert("RGB"))
    assert np.array_equal(masked[:, 40:], np.asarray(gradient(64, 64))[:, 40:])  # a.png had a mask: right half kept
    assert parse_infotext(read_infotext(Image.open(outputs / "b.png")))["Denoising strength"] == "0.5"


def test_the_app_serves_img2img_next_to_txt2img(api_app):
    client = TestClient(api_app)
    response = client.post("/sdapi/v1/img2img", json=dict(BASE, init_images=[encode(gradient(64, 64), "JPEG")], denoising_strength=0.3))
    assert response.status_code == 200, response.text
    assert parse_infotext(read_infotext(decode(response.json()["images"][0])))["Denoising strength"] == "0.3"
    assert "/sdapi/v1/img2img" in client.get("/openapi.json").json()["paths"]
