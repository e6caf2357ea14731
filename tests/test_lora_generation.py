"""LoRA through the whole app on the tiny SD1 checkpoint: prompt tags, exact restore, infotext, API."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from modules.generation.params import Txt2ImgParams
from modules.imaging.infotext import parse_infotext
from modules.networks.library import addnet_hash
from modules.networks.tiny_networks import build_tiny_network, write_network


def generate(app_context, prompt: str, **fields):
    values = {"prompt": prompt, "steps": 2, "width": 64, "height": 64, "seed": 321, "sampler_name": "Euler"}
    values.update(fields)
    return app_context.run_txt2img(Txt2ImgParams.from_request(values))


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


@pytest.fixture(scope="module")
def lora_file(app_context):
    checkpoint = app_context.models.require().checkpoint
    path = write_network(
        build_tiny_network(checkpoint, "lora", strength=0.5), app_context.paths.lora_dir / "sub" / "tinylora.safetensors", "tiny_alias"
    )
    app_context.network_manager().library.refresh()
    yield path
    app_context.network_manager().applier_for(app_context.models.require()).apply([])


def test_lora_changes_the_image_and_removing_it_restores_it_exactly(app_context, lora_file):
    plain = generate(app_context, "a photo of a cat")
    with_lora = generate(app_context, "a photo of a cat <lora:tinylora:1>")
    assert np.abs(pixels(with_lora.images[0]) - pixels(plain.images[0])).mean() > 1
    fields = parse_infotext(with_lora.infotexts[0])
    assert fields["Prompt"] == "a photo of a cat <lora:tinylora:1>"  # the tag stays in the infotext
    assert fields["Lora hashes"] == f"tinylora: {addnet_hash(lora_file)[:12]}"
    assert 'Lora hashes: "tinylora: ' in with_lora.infotexts[0]

    zero = generate(app_context, "a photo of a cat <lora:tinylora:0>")
    assert np.array_equal(pixels(zero.images[0]), pixels(plain.images[0]))
    again = generate(app_context, "a photo of a cat")
    assert np.array_equal(pixels(again.images[0]), pixels(plain.images[0]))
    assert "Lora hashes" not in again.infotexts[0]


def test_alias_tag_and_the_tag_text_is_not_encoded(app_context, lora_file):
    by_name = generate(app_context, "a photo of a cat <lora:tinylora:0.7>")
    by_alias = generate(app_context, "a photo of a cat<lora:tiny_alias:0.7>")
    assert np.array_equal(pixels(by_name.images[0]), pixels(by_alias.images[0]))


def test_missing_network_is_reported_and_generation_runs(app_context, lora_file):
    plain = generate(app_context, "a photo of a cat")
    missing = generate(app_context, "a photo of a cat <lora:no_such_lora:1>")
    assert "Networks not found: no_such_lora" in missing.comments
    assert np.array_equal(pixels(missing.images[0]), pixels(plain.images[0]))


def test_api_lists_loras_with_metadata_and_reports_missing_names(app_context, api_app, lora_file):
    client = TestClient(api_app)
    assert client.post("/sdapi/v1/refresh-loras").status_code == 200
    items = client.get("/sdapi/v1/loras").json()
    item = next(entry for entry in items if entry["name"] == "tinylora")
    assert item["alias"] == "tiny_alias"
    assert item["path"] == str(lora_file)
    assert item["metadata"]["ss_network_dim"] == "4"
    assert item["metadata"]["ss_tag_frequency"] == {"tiny": {"random": 1}}
    body = {"prompt": "cat <lora:absent:1>", "steps": 1, "width": 64, "height": 64, "seed": 1}
    response = client.post("/sdapi/v1/txt2img", json=body)
    assert response.status_code == 200
    import json

    assert "Networks not found: absent" in json.loads(response.json()["info"])["comments"]


def test_an_unreadable_tag_is_reported_and_dropped(app_context, lora_file):
    plain = generate(app_context, "a photo of a cat")
    bad = generate(app_context, "a photo of a cat <lora:tinylora:strong>")
    assert any("<lora:tinylora:strong>: te weight 'strong' is not a number" in comment for comment in bad.comments)
    assert np.array_equal(pixels(bad.images[0]), pixels(plain.images[0]))


def test_only_the_first_prompt_of_a_batch_brings_networks(app_context, lora_file):
    from modules.networks.activation import prepare_prompt_networks

    manager = app_context.network_manager()
    engine = app_context.models.require()
    result = prepare_prompt_networks(manager, engine, ["a <lora:no_such:1>", "b <lora:tinylora:1>"])
    assert result.prompts == ["a ", "b "]
    assert result.comments == ["Networks not found: no_such"] and "Lora hashes" not in result.infotext
    assert not manager.applier_for(engine).active
