"""API schemas and validation through FastAPI's TestClient: every refused request names the field, and
nothing is queued for it; lists and info endpoints answer in A1111's shapes."""

import base64
import io
import json
import struct
import zlib

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from modules.imaging.metadata import encode_image

SMALL = {"prompt": "x", "steps": 1, "width": 64, "height": 64, "seed": 5}


@pytest.fixture(scope="module")
def client(app_context, api_app):
    with TestClient(api_app) as test_client:
        yield test_client


def _png_base64(infotext: str | None = None, size=(16, 16)) -> str:
    return base64.b64encode(encode_image(Image.new("RGB", size, (10, 20, 30)), "png", infotext)).decode()


def _bomb_png(width: int, height: int) -> str:
    """A valid PNG header announcing a huge image (the pixel data is never reached)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    return base64.b64encode(data).decode()


@pytest.mark.parametrize(
    ("change", "field", "status"),
    [
        ({"width": 100}, "width", 422),
        ({"width": 9000}, "width", 422),
        ({"width": 8192, "height": 8192}, "width", 422),
        ({"height": 32}, "height", 422),
        ({"steps": 0}, "steps", 422),
        ({"steps": 5000}, "steps", 422),
        ({"steps": "many"}, "steps", 422),
        ({"batch_size": 0}, "batch_size", 422),
        ({"batch_size": 65}, "batch_size", 422),
        ({"n_iter": 1001}, "n_iter", 422),
        ({"cfg_scale": 101}, "cfg_scale", 422),
        ({"cfg_scale": "nan"}, "cfg_scale", 422),
        ({"eta": "inf"}, "eta", 422),
        ({"subseed_strength": 2}, "subseed_strength", 422),
        ({"sampler_name": "Nope"}, "sampler_name", 422),
        ({"scheduler": "Nope"}, "scheduler", 422),
        ({"override_settings": {"sd_model_checkpoint": "missing-model"}}, "sd_model_checkpoint", 422),
        ({"override_settings": {"CLIP_stop_at_last_layers": 40}}, "CLIP_stop_at_last_layers", 422),
        ({"override_settings": "yes"}, "override_settings", 422),
        ({"script_name": "no such script"}, "script_name", 422),
        ({"alwayson_scripts": []}, "alwayson_scripts", 422),
        ({"prompt": 5}, "prompt", 422),
    ],
)
def test_txt2img_refuses_bad_input_naming_the_field(client, app_context, change, field, status):
    before = len(app_context.jobs.finished)
    response = client.post("/sdapi/v1/txt2img", json={**SMALL, **change})
    assert response.status_code == status, response.text
    body = response.json()
    assert field in body["detail"], body
    assert set(body) >= {"error", "detail"}
    assert len(app_context.jobs.finished) == before, "a refused request must not be queued"


def test_names_in_errors_list_the_valid_values(client):
    detail = client.post("/sdapi/v1/txt2img", json={**SMALL, "sampler_name": "Nope"}).json()["detail"]
    assert "Euler a" in detail and "DPM++ 2M" in detail
    detail = client.post("/sdapi/v1/txt2img", json={**SMALL, "scheduler": "Nope"}).json()["detail"]
    assert "Karras" in detail
    detail = client.post("/sdapi/v1/txt2img", json={**SMALL, "override_settings": {"sd_model_checkpoint": "missing"}}).json()["detail"]
    assert "tiny-sd1.safetensors" in detail


def test_nan_literal_in_json_is_refused(client):
    raw = b'{"prompt": "x", "steps": 1, "width": 64, "height": 64, "cfg_scale": NaN}'
    response = client.post("/sdapi/v1/txt2img", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert "NaN" in response.json()["detail"]


def test_limits_come_from_the_settings_and_the_api_cannot_change_them(client, app_context):
    assert client.post("/sdapi/v1/options", json={"limit_max_steps": 100000}).status_code == 200
    assert app_context.options.limit_max_steps == 1000, "restricted settings are ignored over the API"
    app_context.options.set("limit_max_steps", 3)
    try:
        response = client.post("/sdapi/v1/txt2img", json={**SMALL, "steps": 4})
        assert response.status_code == 422 and "steps" in response.json()["detail"]
        assert client.post("/sdapi/v1/txt2img", json={**SMALL, "steps": 3}).status_code == 200
    finally:
        app_context.options.set("limit_max_steps", 1000)


def test_webuiapi_style_payload_with_extra_fields_is_accepted(client):
    payload = {
        **SMALL,
        "enable_hr": False,
        "hr_scale": 2,
        "hr_upscaler": "Latent",
        "denoising_strength": 0.7,
        "scheduler": "automatic",
        "sampler_index": "Euler a",
        "sampler_name": "Euler",
        "script_name": None,
        "script_args": [],
        "alwayson_scripts": {},
        "s_churn": 0,
        "override_settings": {"CLIP_stop_at_last_layers": 2},
    }
    response = client.post("/sdapi/v1/txt2img", json=payload)
    assert response.status_code == 200, response.text
    text = json.loads(response.json()["info"])["infotexts"][0]
    assert "Sampler: Euler," in text and "Clip skip: 2" in text


def test_override_settings_apply_to_one_job_or_persist_when_asked(client, app_context):
    assert app_context.options.CLIP_stop_at_last_layers == 1
    once = client.post("/sdapi/v1/txt2img", json={**SMALL, "override_settings": {"CLIP_stop_at_last_layers": 2}})
    assert "Clip skip: 2" in json.loads(once.json()["info"])["infotexts"][0]
    assert client.get("/sdapi/v1/options").json()["CLIP_stop_at_last_layers"] == 1
    kept = {**SMALL, "override_settings": {"CLIP_stop_at_last_layers": 3}, "override_settings_restore_afterwards": False}
    try:
        assert client.post("/sdapi/v1/txt2img", json=kept).status_code == 200
        assert client.get("/sdapi/v1/options").json()["CLIP_stop_at_last_layers"] == 3
    finally:
        app_context.options.set("CLIP_stop_at_last_layers", 1)


def test_send_images_false_returns_no_images(client):
    body = client.post("/sdapi/v1/txt2img", json={**SMALL, "send_images": False}).json()
    assert body["images"] == []
    assert json.loads(body["info"])["all_seeds"] == [5]


def test_png_info_reads_and_parses_the_infotext(client):
    text = "a red fox\nNegative prompt: blurry\nSteps: 12, Sampler: Euler a, CFG scale: 6.5, Seed: 77, Size: 64x48"
    for prefix in ("", "data:image/png;base64,"):
        body = client.post("/sdapi/v1/png-info", json={"image": prefix + _png_base64(text)}).json()
        assert body["info"] == text
        assert body["parameters"]["Prompt"] == "a red fox"
        assert body["parameters"]["Negative prompt"] == "blurry"
        assert body["parameters"]["Seed"] == "77"
        assert body["parameters"]["Size-1"] == "64"


@pytest.mark.parametrize(
    ("image", "status"),
    [("not base64!!", 422), (base64.b64encode(b"just some text").decode(), 422), (_bomb_png(30000, 30000), 413)],
)
def test_bad_images_are_refused(client, image, status):
    for route in ("/sdapi/v1/png-info", "/sdapi/v1/extra-single-image"):
        response = client.post(route, json={"image": image})
        assert response.status_code == status, (route, response.text)
        assert "image" in response.json()["detail"]


def test_extras_return_the_image_unchanged_without_upscaler_and_resize_with_lanczos(client):
    source = _png_base64("kept text", size=(20, 10))
    single = client.post("/sdapi/v1/extra-single-image", json={"image": source, "upscaler_1": "None"}).json()
    image = Image.open(io.BytesIO(base64.b64decode(single["image"])))
    assert image.size == (20, 10) and image.getpixel((3, 3)) == (10, 20, 30)
    assert image.info["parameters"] == "kept text"
    batch = client.post(
        "/sdapi/v1/extra-batch-images",
        json={"imageList": [{"data": source, "name": "a"}, {"data": source, "name": "b"}], "upscaler_1": "Lanczos", "upscaling_resize": 2},
    ).json()
    assert [Image.open(io.BytesIO(base64.b64decode(item))).size for item in batch["images"]] == [(40, 20), (40, 20)]
    missing = client.post("/sdapi/v1/extra-single-image", json={"image": source, "upscaler_1": "R-ESRGAN 4x+"})
    assert missing.status_code == 404 and "Lanczos" in missing.json()["detail"]


def test_options_post_accepts_the_whole_dict_and_names_unknown_keys_and_wrong_types(client, app_context):
    everything = client.get("/sdapi/v1/options").json()
    assert client.post("/sdapi/v1/options", json=everything).status_code == 200
    bad = client.post("/sdapi/v1/options", json={"no_such_setting": 1, "samples_save": "sometimes", "jpeg_quality": 90})
    assert bad.status_code == 422
    assert "no_such_setting" in bad.json()["detail"] and "samples_save" in bad.json()["detail"]
    assert app_context.options.jpeg_quality == 80, "nothing changes when part of the request is invalid"
    assert client.post("/sdapi/v1/options", json={"jpeg_quality": 90}).status_code == 200
    assert client.get("/sdapi/v1/options").json()["jpeg_quality"] == 90
    app_context.options.set("jpeg_quality", 80)
    unknown_model = client.post("/sdapi/v1/options", json={"sd_model_checkpoint": "missing-model"})
    assert unknown_model.status_code == 422 and "tiny-sd1" in unknown_model.json()["detail"]


def test_cmd_flags_hide_credentials(client, app_context):
    app_context.flags.api_auth = "someone:hunter2"
    try:
        flags = client.get("/sdapi/v1/cmd-flags").json()
    finally:
        app_context.flags.api_auth = None
    assert "hunter2" not in json.dumps(flags)
    assert flags["api"] is True and "data_dir" in flags


@pytest.mark.parametrize(
    ("path", "check"),
    [
        ("/sdapi/v1/upscalers", lambda body: {"None", "Lanczos"} <= {item["name"] for item in body}),
        ("/sdapi/v1/latent-upscale-modes", lambda body: body[0] == {"name": "Latent"}),
        ("/sdapi/v1/sd-vae", lambda body: isinstance(body, list)),
        ("/sdapi/v1/prompt-styles", lambda body: body == []),
        ("/sdapi/v1/embeddings", lambda body: body == {"loaded": {}, "skipped": {}}),
        ("/sdapi/v1/hypernetworks", lambda body: body == []),
        ("/sdapi/v1/face-restorers", lambda body: body == []),
        ("/sdapi/v1/scripts", lambda body: set(body) == {"txt2img", "img2img"} and all(isinstance(name, str) for name in body["txt2img"])),
        ("/sdapi/v1/script-info", lambda body: all({"name", "is_alwayson", "is_img2img", "args"} <= set(item) for item in body)),
        ("/sdapi/v1/extensions", lambda body: body == []),
        ("/sdapi/v1/memory", lambda body: body["ram"]["total"] > 0 and "cuda" in body),
        ("/sdapi/v1/samplers", lambda body: body[0]["name"] and "aliases" in body[0]),
    ],
)
def test_info_endpoints_answer_in_a1111_shapes(client, path, check):
    response = client.get(path)
    assert response.status_code == 200, response.text
    assert check(response.json())


def test_refreshes_and_reload_answer(client, app_context):
    for path in ("refresh-checkpoints", "refresh-vae", "refresh-embeddings", "refresh-loras"):
        assert client.post(f"/sdapi/v1/{path}").status_code == 200
    assert client.post("/sdapi/v1/unload-checkpoint").status_code == 200
    assert app_context.models.engine is None
    assert client.post("/sdapi/v1/reload-checkpoint").status_code == 200
    assert app_context.models.engine is not None


def test_server_control_only_with_its_flag(client):
    assert client.post("/sdapi/v1/server-kill").status_code in (404, 405)


def test_openapi_documents_request_and_response_models(client):
    schema = client.get("/openapi.json").json()
    components = schema["components"]["schemas"]
    assert "steps" in components["StableDiffusionTxt2ImgProcessingAPI"]["properties"]
    assert "imageList" in components["ExtrasBatchImagesRequest"]["properties"]
    assert "/sdapi/v1/png-info" in schema["paths"]
    body = schema["paths"]["/sdapi/v1/txt2img"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("StableDiffusionTxt2ImgProcessingAPI")
    assert client.get("/docs").status_code == 200


def test_checkpoint_override_is_used_for_one_job_and_options_load_before_the_reply(client, app_context, tiny_sd1_path):
    import shutil

    folder = app_context.paths.checkpoint_dirs[0]
    other = folder / "other-model.safetensors"
    shutil.copy(tiny_sd1_path, other)
    original = app_context.models.info.title
    try:
        client.post("/sdapi/v1/refresh-checkpoints")
        body = client.post("/sdapi/v1/txt2img", json={**SMALL, "override_settings": {"sd_model_checkpoint": "other-model"}}).json()
        assert "Model: other-model" in json.loads(body["info"])["infotexts"][0]
        assert app_context.models.info.title == original, "the settings' checkpoint is back after the job"
        assert client.get("/sdapi/v1/options").json()["sd_model_checkpoint"] == original
        assert client.post("/sdapi/v1/options", json={"sd_model_checkpoint": "other-model"}).status_code == 200
        assert app_context.models.info.name.startswith("other-model"), "loaded before the reply"
        assert client.get("/sdapi/v1/options").json()["sd_model_checkpoint"].startswith("other-model")
    finally:
        assert client.post("/sdapi/v1/options", json={"sd_model_checkpoint": original}).status_code == 200
        other.unlink()
        client.post("/sdapi/v1/refresh-checkpoints")


def test_cors_only_for_named_origins(app_flags, app_context):
    import argparse

    from webui import create_app

    def preflight(cors_origins):
        flags = argparse.Namespace(**{**vars(app_flags), "nowebui": True, "cors_allow_origins": cors_origins})
        app, _ = create_app(flags, app_context)
        with TestClient(app) as test_client:
            return test_client.options(
                "/sdapi/v1/options", headers={"Origin": "https://tool.example", "Access-Control-Request-Method": "GET"}
            )

    assert "access-control-allow-origin" not in preflight(None).headers
    assert "access-control-allow-origin" not in preflight("https://other.example").headers
    assert preflight("https://tool.example,https://other.example").headers["access-control-allow-origin"] == "https://tool.example"
