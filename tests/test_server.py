"""A real launched server: `launch.py --demo-model --api` on a loopback port, spoken to over HTTP."""

import base64
import io
import json

from PIL import Image

from tests.server_process import request


def test_ui_page_is_served(demo_server):
    base, _ = demo_server
    status, body = request(base + "/")
    assert status == 200
    assert b"gradio" in body.lower()


def test_generate_over_http_saves_the_image(demo_server):
    base, data_dir = demo_server
    status, body = request(
        base + "/sdapi/v1/txt2img", {"prompt": "a lighthouse", "steps": 2, "width": 64, "height": 64, "seed": 9, "save_images": True}
    )
    assert status == 200, body
    result = json.loads(body)
    image = Image.open(io.BytesIO(base64.b64decode(result["images"][0])))
    assert image.size == (64, 64)
    assert "Demo model" in json.loads(result["info"])["comments"]
    saved = list((data_dir / "outputs" / "txt2img-images").glob("*/*.png"))
    assert len(saved) == 1 and saved[0].name.startswith("00000-9-a lighthouse")


def test_bad_request_keeps_the_server_serving(demo_server):
    base, _ = demo_server
    status, body = request(base + "/sdapi/v1/txt2img", {"prompt": "x", "steps": "many"})
    assert status == 422 and b"steps" in body
    status, _ = request(base + "/sdapi/v1/sd-models")
    assert status == 200
