"""The A1111 HTTP API through FastAPI's TestClient: request and response fields, errors, model switching."""

import base64
import hashlib
import io
import json
import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from modules.imaging.metadata import read_infotext


@pytest.fixture(scope="module")
def client(app_context, api_app):
    with TestClient(api_app) as test_client:
        yield test_client


def test_txt2img_returns_png_images_with_infotext(client):
    response = client.post(
        "/sdapi/v1/txt2img",
        json={
            "prompt": "a cat",
            "negative_prompt": "dog",
            "steps": 2,
            "width": 64,
            "height": 64,
            "seed": 42,
            "sampler_name": "Euler a",
            "batch_size": 2,
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"images", "parameters", "info"}
    info = json.loads(body["info"])
    assert info["all_seeds"] == [42, 43]
    assert info["seed"] == 42
    assert body["parameters"]["prompt"] == "a cat"
    assert body["parameters"]["cfg_scale"] == 7.0
    images = [Image.open(io.BytesIO(base64.b64decode(data))) for data in body["images"]]
    assert [image.size for image in images][-1] == (64, 64)
    text = read_infotext(images[-1])
    assert text.startswith("a cat\nNegative prompt: dog\nSteps: 2, Sampler: Euler a")
    assert text == info["infotexts"][-1]


def test_sampler_index_alias_and_validation_errors(client):
    ok = client.post("/sdapi/v1/txt2img", json={"prompt": "x", "steps": 1, "width": 64, "height": 64, "sampler_index": "Heun"})
    assert ok.status_code == 200
    assert "Sampler: Heun" in json.loads(ok.json()["info"])["infotexts"][0]
    bad = client.post("/sdapi/v1/txt2img", json={"prompt": "x", "width": 100})
    assert bad.status_code == 422
    assert "width" in bad.json()["detail"]
    unknown = client.post("/sdapi/v1/txt2img", json={"prompt": "x", "steps": 1, "width": 64, "height": 64, "sampler_name": "Nope"})
    assert unknown.status_code == 422
    assert "sampler_name" in unknown.json()["detail"]
    not_json = client.post("/sdapi/v1/txt2img", content=b"{", headers={"content-type": "application/json"})
    assert not_json.status_code == 422


def test_sd_models_lists_titles_with_short_hash(client, app_context):
    models = client.get("/sdapi/v1/sd-models").json()
    assert models, "the tiny checkpoint should be listed"
    entry = models[0]
    assert entry["title"] == f"tiny-sd1.safetensors [{entry['hash']}]"
    assert entry["model_name"] == "tiny-sd1"
    assert len(entry["hash"]) == 10
    assert entry["sha256"].startswith(entry["hash"])
    assert entry["sha256"] == hashlib.sha256(Path(entry["filename"]).read_bytes()).hexdigest()


def test_samplers_and_schedulers_lists(client):
    names = [item["name"] for item in client.get("/sdapi/v1/samplers").json()]
    for name in ["Euler a", "DPM++ 2M", "DPM++ SDE", "UniPC", "Restart", "LCM"]:
        assert name in names
    schedulers = [item["name"] for item in client.get("/sdapi/v1/schedulers").json()]
    assert {"Automatic", "Karras", "Exponential", "SGM Uniform"} <= set(schedulers)


def _write_bad_files(folder):
    good = next(folder.glob("*.safetensors"))
    data = good.read_bytes()
    (folder / "truncated.safetensors").write_bytes(data[: len(data) // 3])
    (folder / "corrupt.safetensors").write_bytes(b"\xff" * 4096)
    marker = folder.parent / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    import torch

    torch.save({"state_dict": Evil()}, folder / "evil.ckpt")
    from safetensors.torch import save_file

    save_file({"transformer.blocks.0.weight": torch.zeros(2, 2)}, str(folder / "alien.safetensors"))
    return marker


def test_bad_checkpoints_fail_clearly_and_keep_the_previous_model(client, app_context):
    folder = app_context.paths.checkpoint_dirs[0]
    marker = _write_bad_files(folder)
    client.post("/sdapi/v1/refresh-checkpoints")
    before = app_context.models.info.title
    try:
        for name in ["truncated", "corrupt", "evil", "alien"]:
            response = client.post("/sdapi/v1/options", json={"sd_model_checkpoint": name})
            assert response.status_code == 500, name
            detail = response.json()["detail"]
            assert name in detail, detail
            assert app_context.models.info.title == before
            still = client.post("/sdapi/v1/txt2img", json={"prompt": "x", "steps": 1, "width": 64, "height": 64})
            assert still.status_code == 200
        assert not marker.exists(), "the pickle's payload must never run"
    finally:
        for name in ["truncated.safetensors", "corrupt.safetensors", "evil.ckpt", "alien.safetensors"]:
            (folder / name).unlink(missing_ok=True)
        client.post("/sdapi/v1/refresh-checkpoints")


def test_options_round_trip_and_rejects_bad_values(client, app_context):
    options = client.get("/sdapi/v1/options").json()
    assert options["samples_format"] == "png"
    assert client.post("/sdapi/v1/options", json=options).status_code == 200
    bad = client.post("/sdapi/v1/options", json={"CLIP_stop_at_last_layers": 40})
    assert bad.status_code == 422 and "CLIP_stop_at_last_layers" in bad.json()["detail"]
    assert app_context.options.CLIP_stop_at_last_layers == 1


def test_progress_when_idle(client):
    body = client.get("/sdapi/v1/progress").json()
    assert body["progress"] == 0
    assert body["state"]["job_count"] == 0


def test_vae_setting_loads_the_file_and_is_recorded(client, app_context, tiny_sd1_path):
    from safetensors.torch import load_file, save_file

    weights = {key: value for key, value in load_file(str(tiny_sd1_path)).items() if key.startswith("first_stage_model.")}
    weights = {key: value * 1.01 if value.is_floating_point() else value for key, value in weights.items()}
    vae_dir = app_context.paths.vae_dirs[0]
    vae_dir.mkdir(parents=True, exist_ok=True)
    vae_file = vae_dir / "brighter.safetensors"
    save_file(weights, str(vae_file))
    body = {"prompt": "x", "steps": 1, "width": 64, "height": 64, "seed": 3}
    try:
        plain = client.post("/sdapi/v1/txt2img", json=body).json()
        assert client.post("/sdapi/v1/options", json={"sd_vae": "brighter.safetensors"}).status_code == 200
        with_vae = client.post("/sdapi/v1/txt2img", json=body).json()
        text = json.loads(with_vae["info"])["infotexts"][0]
        assert "VAE: brighter.safetensors" in text
        assert f"VAE hash: {hashlib.sha256(vae_file.read_bytes()).hexdigest()[:10]}" in text
        assert with_vae["images"][0] != plain["images"][0]
        missing = client.post("/sdapi/v1/options", json={"sd_vae": "nope.safetensors"})
        assert missing.status_code == 422 and "sd_vae" in missing.json()["detail"]
        assert app_context.options.sd_vae == "brighter.safetensors"
    finally:
        app_context.options.set("sd_vae", "Automatic")
        vae_file.unlink()
        app_context.models.refresh()
