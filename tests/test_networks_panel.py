"""The extra-networks panel: escaped cards, search and sort, click to insert, user metadata editor."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr
import pytest
from PIL import Image

from modules.networks.library import NetworkLibrary
from modules.networks.tiny_networks import write_network
from modules.ui.extra_networks import (
    ExtraNetworksSource,
    NetworkCard,
    build_extra_networks_panel,
    card_html,
    filter_and_sort,
    lora_cards,
    lora_tag,
    toggle_in_prompt,
)


def test_card_text_is_escaped():
    card = NetworkCard('<script>alert(1)</script>"x', "tag", Path("/a/<b>.safetensors"), description="<img src=x onerror=alert(2)>")
    text = card_html(card)
    assert "<script>" not in text and "<img src=x" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;x" in text
    assert "&lt;img src=x onerror=alert(2)&gt;" in text


def test_toggle_tag_and_preferred_weight():
    assert toggle_in_prompt("", "<lora:a:1>") == "<lora:a:1>"
    assert toggle_in_prompt("a cat", "<lora:a:1>") == "a cat <lora:a:1>"
    assert toggle_in_prompt("a cat <lora:a:1>", "<lora:a:1>") == "a cat"
    assert lora_tag("ink", {}) == "<lora:ink:1>"
    assert lora_tag("ink", {"preferred weight": 0.6, "activation text": "inky style"}) == "<lora:ink:0.6> inky style"


def test_search_and_sort():
    cards = [NetworkCard("beta", "b", Path("/z/beta"), mtime=1), NetworkCard("Alpha", "a", Path("/y/alpha"), mtime=3, search_terms="anime")]
    assert [card.name for card in filter_and_sort(cards, "", "Name", False)] == ["Alpha", "beta"]
    assert [card.name for card in filter_and_sort(cards, "", "Date modified", True)] == ["Alpha", "beta"]
    assert [card.name for card in filter_and_sort(cards, "", "Path", False)] == ["Alpha", "beta"]
    assert [card.name for card in filter_and_sort(cards, "anim", "Name", False)] == ["Alpha"]
    with pytest.raises(ValueError, match="sort"):
        filter_and_sort(cards, "", "Size", False)


@pytest.fixture()
def library(tmp_path):
    root = tmp_path / "Lora"
    import torch

    write_network({"lora_te_text_model_encoder_layers_0_mlp_fc1.alpha": torch.tensor(1.0)}, root / "ink.safetensors", "ink_out")
    write_network({"lora_te_text_model_encoder_layers_0_mlp_fc2.alpha": torch.tensor(1.0)}, root / "zed.safetensors")
    Image.new("RGB", (8, 8), "red").save(root / "ink.png")
    (root / "zed.json").write_text(json.dumps({"description": "a <b>zed</b>"}))
    return NetworkLibrary([root])


def test_panel_shows_cards_inserts_tags_and_saves_user_metadata(library):
    def save(name, values):
        library.save_user_metadata(library.find(name), values)

    source = ExtraNetworksSource({"Lora": lambda: (library.refresh(), lora_cards(library))[1]}, save)
    with gr.Blocks():
        prompt = gr.Textbox()
        panel = build_extra_networks_panel("txt2img", prompt, source)
    parts = panel.tabs["Lora"]
    dataset, names = parts["show"]("", "Name", False)
    assert names == ["ink", "zed"]
    samples = dataset.samples
    assert "data:image/jpeg;base64," in samples[0][0]  # the preview
    assert "a &lt;b&gt;zed&lt;/b&gt;" in samples[1][0]
    new_prompt, metadata, name, *_ = parts["click"](0, names, "a cat")
    assert new_prompt == "a cat <lora:ink:1>" and name == "ink"
    assert metadata["alias"] == "ink_out" and metadata["ss_network_module"] == "networks.lora"
    assert parts["click"](0, names, new_prompt)[0] == "a cat"
    assert panel.tabs["Checkpoints"]["show"]("", "Name", False)[1] == []

    save("ink", {"description": "d", "activation text": "inky", "preferred weight": 0.5})
    saved = json.loads((library.find("ink").path.with_suffix(".json")).read_text())
    assert saved == {"description": "d", "activation text": "inky", "preferred weight": 0.5}
    _, names = parts["show"]("", "Name", True)
    assert parts["click"](names.index("ink"), names, "")[0] == "<lora:ink:0.5> inky"


def test_source_from_the_app_context(app_context):
    source = ExtraNetworksSource.from_context(app_context)
    checkpoints = source.cards("Checkpoints")
    assert any(card.name == "tiny-sd1" for card in checkpoints)
    assert all(isinstance(card, NetworkCard) for card in source.cards("Lora"))


def test_a_checkpoint_card_loads_the_model_instead_of_inserting_text():
    chosen = []
    card = NetworkCard("other", "other [abc]", Path("/m/other.safetensors"), select=lambda: chosen.append("other"))
    source = ExtraNetworksSource({"Checkpoints": lambda: [card]})
    with gr.Blocks():
        prompt = gr.Textbox()
        panel = build_extra_networks_panel("img2img", prompt, source)
    parts = panel.tabs["Checkpoints"]
    _, names = parts["show"]("", "Name", False)
    assert parts["click"](0, names, "a cat")[0] == "a cat"
    assert chosen == ["other"]


def test_generation_panel_puts_the_panel_under_the_prompt(app_context, tmp_path):
    from modules.ui.generation_panel import build_generation_panel
    from modules.ui.ui_config import UiConfig

    with gr.Blocks():
        panel = build_generation_panel(
            "txt2img",
            UiConfig(tmp_path / "ui-config.json"),
            [],
            allow_open_folder=False,
            extra_networks_source=ExtraNetworksSource.from_context(app_context),
        )
    assert set(panel.extra_networks.tabs) == {"Textual Inversion", "Hypernetworks", "Checkpoints", "Lora"}
    lora = panel.extra_networks.tabs["Lora"]
    assert lora["cards"].elem_id == "txt2img_extra_lora_cards"
