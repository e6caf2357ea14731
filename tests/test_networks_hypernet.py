"""Hypernetworks: weights-only loading, the residual MLP, prompt tags on the tiny SD1 model, removal."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from modules.generation.params import Txt2ImgParams
from modules.imaging.infotext import parse_infotext
from modules.networks.hypernetworks import HypernetworkError, load_hypernetwork


def side(width: int, seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {
        "linear.0.weight": torch.randn(width * 2, width, generator=generator) * 0.5,
        "linear.0.bias": torch.randn(width * 2, generator=generator) * 0.1,
        "linear.2.weight": torch.randn(width, width * 2, generator=generator) * 0.5,
        "linear.2.bias": torch.randn(width, generator=generator) * 0.1,
    }


def write_hypernetwork(path, width=32, name="tinyhyper"):
    data = {
        width: [side(width, 1), side(width, 2)],
        "activation_func": "relu",
        "layer_structure": [1, 2, 1],
        "name": name,
        "is_layer_norm": False,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(data, path)
    return path


def test_the_mlp_matches_a_torch_sequential(tmp_path):
    network = load_hypernetwork(write_hypernetwork(tmp_path / "h.pt"))
    key_side = network.sides[32][0]
    reference = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 32))
    reference.load_state_dict({key.removeprefix("linear."): value for key, value in side(32, 1).items()})
    context = torch.randn(2, 5, 32)
    assert torch.allclose(key_side(context), reference(context), atol=1e-6)
    assert network.name == "tinyhyper" and len(network.shorthash) == 10


def test_files_needing_more_than_weights_are_refused(tmp_path):
    path = tmp_path / "bad.pt"
    torch.save({32: [side(32, 1), side(32, 2)], "extra": argparse.Namespace(a=1)}, path)
    with pytest.raises(HypernetworkError, match="bad.pt: not a weights-only"):
        load_hypernetwork(path)
    torch.save({"name": "empty"}, tmp_path / "empty.pt")
    with pytest.raises(HypernetworkError, match="no context widths"):
        load_hypernetwork(tmp_path / "empty.pt")


def generate(app_context, prompt):
    values = {"prompt": prompt, "steps": 2, "width": 64, "height": 64, "seed": 99, "sampler_name": "Euler"}
    return app_context.run_txt2img(Txt2ImgParams.from_request(values))


def test_hypernet_tag_changes_the_image_and_removal_restores_it(app_context):
    write_hypernetwork(app_context.paths.models_dir / "hypernetworks" / "tinyhyper.pt")
    plain = np.asarray(generate(app_context, "a dog").images[0], dtype=np.int16)
    hyper = generate(app_context, "a dog <hypernet:tinyhyper:0.8>")
    assert np.abs(np.asarray(hyper.images[0], dtype=np.int16) - plain).mean() > 1
    fields = parse_infotext(hyper.infotexts[0])
    assert fields["Hypernet"] == "tinyhyper" and fields["Hypernet strength"] == "0.8"
    again = generate(app_context, "a dog")
    assert np.array_equal(np.asarray(again.images[0], dtype=np.int16), plain)
    missing = generate(app_context, "a dog <hypernet:nothing:1>")
    assert "Hypernetworks not found: nothing" in missing.comments


def test_api_lists_hypernetworks(app_context, api_app):
    from fastapi.testclient import TestClient

    path = write_hypernetwork(app_context.paths.models_dir / "hypernetworks" / "listed.pt", name="listed")
    items = TestClient(api_app).get("/sdapi/v1/hypernetworks").json()
    assert {"name": "listed", "path": str(path)} in items
