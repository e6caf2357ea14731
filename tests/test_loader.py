"""Safe loading, family detection and single-file loading of A1111-layout checkpoints."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import pytest
import torch

from modules.models import families, ldm_layout
from modules.models.loader import load_checkpoint, load_tokenizer, scaled_linear_alphas_cumprod
from modules.models.safe_load import CheckpointError, read_state_dict
from modules.tiny_checkpoint import TinyComponents, build_tiny_components, write_checkpoint

CPU = torch.device("cpu")


@cache
def _components(arch: str, seed: int = 0) -> TinyComponents:
    return build_tiny_components(arch, seed)


def _load(path: Path, **options) -> object:
    return load_checkpoint(path, device=CPU, dtype=options.pop("dtype", torch.float32), **options)


def _assert_same_weights(expected: torch.nn.Module, actual: torch.nn.Module) -> None:
    expected_state, actual_state = expected.state_dict(), actual.state_dict()
    assert expected_state.keys() == actual_state.keys()
    for key, value in expected_state.items():
        assert torch.equal(value, actual_state[key]), key


@pytest.fixture(params=["sd1", "sd2", "sdxl"])
def tiny(request: pytest.FixtureRequest) -> tuple[str, Path]:
    arch = request.param
    return arch, request.getfixturevalue(f"tiny_{arch}_path")


def test_tiny_checkpoints_load_exactly(tiny: tuple[str, Path]) -> None:
    arch, path = tiny
    assert path.stat().st_size < 15_000_000
    loaded = _load(path)
    assert loaded.family == arch
    assert loaded.unet_in_channels == 4
    assert loaded.prediction_type == ("v_prediction" if arch == "sd2" else "epsilon")
    assert loaded.vae_scaling_factor == (0.13025 if arch == "sdxl" else 0.18215)
    assert loaded.vae_name is None
    assert torch.equal(loaded.alphas_cumprod, scaled_linear_alphas_cumprod())
    assert loaded.alphas_cumprod.dtype == torch.float32 and loaded.alphas_cumprod.shape == (1000,)
    expected_classes = {"sd1": ["CLIPTextModel"], "sd2": ["CLIPTextModel"], "sdxl": ["CLIPTextModel", "CLIPTextModelWithProjection"]}
    assert [type(model).__name__ for model in loaded.text_encoders] == expected_classes[arch]
    pads = {"sd1": ["<|endoftext|>"], "sd2": ["!"], "sdxl": ["<|endoftext|>", "!"]}
    assert [tokenizer.pad_token for tokenizer in loaded.tokenizers] == pads[arch]

    built = _components(arch)
    pairs = [(built.unet, loaded.unet), (built.vae, loaded.vae), *zip(built.text_encoders, loaded.text_encoders, strict=True)]
    for expected, actual in pairs:
        _assert_same_weights(expected, actual)
        assert not actual.training
        assert all(parameter.dtype == torch.float32 and not parameter.requires_grad for parameter in actual.parameters())
    assert loaded.unet.config.block_out_channels == [32, 64] or tuple(loaded.unet.config.block_out_channels) == (32, 64)


def _encode(loaded, prompt: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    states, pooled = [], None
    for tokenizer, encoder in zip(loaded.tokenizers, loaded.text_encoders, strict=True):
        ids = tokenizer(prompt, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
        output = encoder(ids, output_hidden_states=True)
        if loaded.family == "sdxl":
            states.append(output.hidden_states[-2])
            pooled = getattr(output, "text_embeds", pooled)
        else:
            states.append(output.last_hidden_state)
    return torch.cat(states, dim=-1), pooled


@torch.no_grad()
def test_unet_forward_and_vae_decode_are_finite(tiny: tuple[str, Path]) -> None:
    arch, path = tiny
    loaded = _load(path)
    context, pooled = _encode(loaded, "a photo of a cat")
    assert context.shape == (1, 77, loaded.unet.config.cross_attention_dim)
    latent = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    extra = {}
    if arch == "sdxl":
        time_ids = torch.tensor([[64.0, 64.0, 0.0, 0.0, 64.0, 64.0]])
        extra["added_cond_kwargs"] = {"text_embeds": pooled, "time_ids": time_ids}
    prediction = loaded.unet(latent, torch.tensor([500]), encoder_hidden_states=context, **extra).sample
    assert prediction.shape == latent.shape and torch.isfinite(prediction).all()
    image = loaded.vae.decode(latent / loaded.vae_scaling_factor).sample
    assert image.shape == (1, 3, 64, 64) and torch.isfinite(image).all()


def test_dtype_is_honoured(tiny_sd1_path: Path) -> None:
    loaded = _load(tiny_sd1_path, dtype=torch.float16)
    models = [loaded.unet, loaded.vae, *loaded.text_encoders]
    assert all(parameter.dtype == torch.float16 for model in models for parameter in model.parameters())
    assert loaded.dtype == torch.float16 and loaded.alphas_cumprod.dtype == torch.float32


def test_tokenizers_match_clip_ids_and_keep_exclamation_marks() -> None:
    for kind in ("clip", "openclip"):
        tokenizer = load_tokenizer(kind)
        assert tokenizer("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
        assert tokenizer.decode(tokenizer("a photo of a cat").input_ids, skip_special_tokens=True) == "a photo of a cat"
        # "!" is OpenCLIP's pad token but must still tokenize as ordinary text.
        assert tokenizer.tokenize("wow!") == ["wow</w>", "!</w>"]
    assert load_tokenizer("clip").pad_token_id == 49407
    assert load_tokenizer("openclip").pad_token_id == 0


def test_truncated_and_corrupt_safetensors_are_reported(tiny_sd1_path: Path, tmp_path: Path) -> None:
    data = tiny_sd1_path.read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"truncated\.safetensors.*corrupt or truncated"):
        _load(truncated)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\xff" * 64)
    with pytest.raises(CheckpointError, match=r"garbage\.safetensors.*corrupt or truncated"):
        read_state_dict(garbage)
    with pytest.raises(CheckpointError, match="not found"):
        read_state_dict(tmp_path / "missing.safetensors")


class _RunsShellCommand:
    """Pickles into a call of os.system, as a malicious .ckpt would."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"echo pwned > {self.marker}",))


def test_malicious_pickle_is_refused_without_side_effects(tmp_path: Path) -> None:
    marker = tmp_path / "somefile"
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"weight": torch.ones(2)}, "payload": _RunsShellCommand(marker)}, evil)
    with pytest.raises(CheckpointError, match=r"refused: the pickle needs .*system.*convert it to \.safetensors"):
        _load(evil)
    assert not marker.exists()


class _Arbitrary:
    """A class that is not on the allowlist: its instances must not be unpickled."""


def test_pickled_arbitrary_class_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "custom.ckpt"
    torch.save({"state_dict": {"weight": torch.ones(1)}, "extra": _Arbitrary()}, path)
    with pytest.raises(CheckpointError, match=r"refused: the pickle needs the global .*_Arbitrary"):
        read_state_dict(path)


def test_damaged_ckpt_is_reported_as_corrupt(tmp_path: Path) -> None:
    good = tmp_path / "good.ckpt"
    torch.save({"state_dict": {"weight": torch.ones(1000)}}, good)
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(good.read_bytes()[:300])
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(bytes(range(256)) * 20)
    for path in (truncated, garbage, tmp_path / "empty.ckpt"):
        path.touch()
        with pytest.raises(CheckpointError, match=rf"{path.name}: file is corrupt or truncated"):
            read_state_dict(path)


def test_lightning_training_state_in_ckpt_is_tolerated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Old SD .ckpt files carry a Lightning ModelCheckpoint object and numpy scalars next to the weights."""
    import sys
    import types

    import numpy

    module_name = "pytorch_lightning.callbacks.model_checkpoint"
    module = types.ModuleType(module_name)
    callback_class = type("ModelCheckpoint", (), {"__module__": module_name})
    module.ModelCheckpoint = callback_class
    for name in ("pytorch_lightning", "pytorch_lightning.callbacks"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, module_name, module)
    callback = callback_class()
    callback.best_model_path = "/train/last.ckpt"
    path = tmp_path / "lightning.ckpt"
    weights = {"model.diffusion_model.out.2.bias": torch.arange(4.0)}
    torch.save({"state_dict": weights, "global_step": numpy.int64(470000), "callbacks": {callback_class: callback}}, path)
    monkeypatch.delitem(sys.modules, module_name)
    loaded = read_state_dict(path)
    assert loaded.keys() == weights.keys() and torch.equal(loaded["model.diffusion_model.out.2.bias"], torch.arange(4.0))


def test_plain_ckpt_loads_like_safetensors(tmp_path: Path, tiny_sd1_path: Path) -> None:
    ckpt = write_checkpoint(_components("sd1").original_state_dict, tmp_path / "tiny.ckpt")
    from_ckpt, from_safetensors = _load(ckpt), _load(tiny_sd1_path)
    _assert_same_weights(from_safetensors.unet, from_ckpt.unet)
    _assert_same_weights(from_safetensors.text_encoders[0], from_ckpt.text_encoders[0])
    assert read_state_dict(ckpt).keys() == read_state_dict(tiny_sd1_path).keys()


@pytest.mark.parametrize(
    ("tensors", "message"),
    [
        ({"foo.bar": torch.zeros(2), "baz": torch.zeros(1)}, "unsupported architecture: no Stable Diffusion UNet"),
        ({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 8)}, "LoRA"),
        (
            {"model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight": torch.zeros(3, 3)},
            "unsupported architecture: Stable Diffusion 3",
        ),
        ({"model.diffusion_model.double_blocks.0.img_attn.qkv.weight": torch.zeros(3, 3)}, "unsupported architecture: Flux"),
        ({"string_to_param.*": torch.zeros(1, 768)}, "embedding"),
    ],
)
def test_foreign_files_are_rejected(tmp_path: Path, tensors: dict, message: str) -> None:
    path = write_checkpoint(tensors, tmp_path / "foreign.safetensors")
    with pytest.raises(CheckpointError, match=message):
        _load(path)


def test_vae_file_passed_as_checkpoint_is_rejected(tmp_path: Path) -> None:
    vae = ldm_layout.vae_to_ldm(_components("sd1").vae.state_dict())
    path = write_checkpoint(vae, tmp_path / "vae.safetensors")
    with pytest.raises(CheckpointError, match="not a Stable Diffusion checkpoint: this looks like a VAE"):
        _load(path)


def test_sdxl_refiner_is_rejected(tmp_path: Path) -> None:
    tensors = dict(_components("sdxl").original_state_dict)
    for key in [key for key in tensors if key.startswith("conditioner.embedders.")]:
        if key.startswith("conditioner.embedders.1."):
            tensors[key.replace("embedders.1.", "embedders.0.")] = tensors.pop(key)
        else:
            del tensors[key]
    with pytest.raises(CheckpointError, match="refiner"):
        _load(write_checkpoint(tensors, tmp_path / "refiner.safetensors"))


def test_missing_weights_are_listed(tmp_path: Path) -> None:
    tensors = dict(_components("sd1").original_state_dict)
    del tensors["model.diffusion_model.input_blocks.1.1.proj_in.weight"]
    with pytest.raises(
        CheckpointError, match=r"UNet: weights do not fit the model: missing 1 keys \(down_blocks\.0\.attentions\.0\.proj_in"
    ):
        _load(write_checkpoint(tensors, tmp_path / "broken.safetensors"))


def test_inpainting_unet_and_old_clip_layout_load(tmp_path: Path) -> None:
    tensors = dict(_components("sd1").original_state_dict)
    conv_in = tensors["model.diffusion_model.input_blocks.0.0.weight"]
    tensors["model.diffusion_model.input_blocks.0.0.weight"] = torch.cat(
        [conv_in, torch.zeros(conv_in.shape[0], 5, 3, 3, dtype=conv_in.dtype)], 1
    )
    for key in [key for key in tensors if key.startswith("cond_stage_model.transformer.text_model.")]:
        tensors[key.replace("transformer.text_model.", "transformer.")] = tensors.pop(key)
    loaded = _load(write_checkpoint(tensors, tmp_path / "inpaint.safetensors"))
    assert loaded.unet_in_channels == 9 and loaded.unet.config.in_channels == 9
    _assert_same_weights(_components("sd1").text_encoders[0], loaded.text_encoders[0])


@pytest.mark.parametrize("layout", ["bare", "prefixed", "diffusers"])
def test_vae_override_replaces_checkpoint_vae(tmp_path: Path, tiny_sd1_path: Path, layout: str) -> None:
    other = _components("sd1", seed=7).vae
    state = other.state_dict()
    if layout != "diffusers":
        state = ldm_layout.vae_to_ldm(state)
    if layout == "prefixed":
        state = ldm_layout.add_prefix(state, "first_stage_model.")
    vae_path = write_checkpoint(state, tmp_path / f"override-{layout}.safetensors")
    loaded = _load(tiny_sd1_path, vae_path=vae_path)
    _assert_same_weights(other, loaded.vae)
    assert loaded.vae_name == vae_path.name
    assert not torch.equal(loaded.vae.decoder.conv_out.weight, _components("sd1").vae.decoder.conv_out.weight)


def test_checkpoint_without_vae_needs_a_vae_file(tmp_path: Path) -> None:
    tensors = {key: value for key, value in _components("sd1").original_state_dict.items() if not key.startswith("first_stage_model.")}
    path = write_checkpoint(tensors, tmp_path / "novae.safetensors")
    with pytest.raises(CheckpointError, match=r"novae\.safetensors: the checkpoint contains no VAE"):
        _load(path)
    vae_path = write_checkpoint(ldm_layout.vae_to_ldm(_components("sd1").vae.state_dict()), tmp_path / "vae.safetensors")
    _assert_same_weights(_components("sd1").vae, _load(path, vae_path=vae_path).vae)


def test_bad_vae_override_names_the_vae_file(tmp_path: Path, tiny_sd1_path: Path) -> None:
    not_a_vae = write_checkpoint({"something.else": torch.zeros(3)}, tmp_path / "wrong.safetensors")
    with pytest.raises(CheckpointError, match=r"wrong\.safetensors: not a VAE"):
        _load(tiny_sd1_path, vae_path=not_a_vae)


def test_sd2_prediction_type_rules(tmp_path: Path, tiny_sd2_path: Path) -> None:
    folder = tmp_path / "sd2"
    folder.mkdir()
    checkpoint = folder / "model-512-base.safetensors"
    checkpoint.write_bytes(tiny_sd2_path.read_bytes())
    assert _load(checkpoint).prediction_type == "epsilon"
    checkpoint.with_suffix(".yaml").write_text('model:\n  params:\n    parameterization: "v"\n')
    assert _load(checkpoint).prediction_type == "v_prediction"
    checkpoint.with_suffix(".yaml").write_text("model:\n  params:\n    linear_start: 0.00085\n")
    assert _load(checkpoint).prediction_type == "epsilon"
    assert _load(checkpoint, prediction_type="v_prediction").prediction_type == "v_prediction"
    with pytest.raises(ValueError):
        _load(checkpoint, prediction_type="sample")


def test_v_pred_marker_and_stored_alphas_cumprod(tmp_path: Path) -> None:
    tensors = dict(_components("sdxl").original_state_dict)
    tensors["v_pred"] = torch.tensor([])
    custom = scaled_linear_alphas_cumprod(0.001, 0.02)
    tensors["alphas_cumprod"] = custom
    loaded = _load(write_checkpoint(tensors, tmp_path / "noob.safetensors"))
    assert loaded.prediction_type == "v_prediction"
    assert torch.equal(loaded.alphas_cumprod, custom)


def _meta_reference_checkpoint(family: str) -> dict[str, torch.Tensor]:
    """Original-layout tensors (on the meta device) of a full-size model built from the bundled configs."""
    import transformers
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, UNet2DConditionModel

    reference = families.family_config(family)
    with init_empty_weights(include_buffers=True):
        unet = UNet2DConditionModel.from_config(reference["unet"])
        vae = AutoencoderKL.from_config(reference["vae"])
        encoders = []
        for entry in reference["text_encoders"]:
            settings = dict(entry["config"])
            settings["num_hidden_layers"] += 1 if entry.get("drop_last_layer") else 0
            encoders.append(getattr(transformers, entry["class"])(transformers.CLIPTextConfig(**settings)))
    tensors = ldm_layout.add_prefix(ldm_layout.unet_to_ldm(unet.state_dict(), unet.config), families.UNET_PREFIX)
    tensors.update(ldm_layout.add_prefix(ldm_layout.vae_to_ldm(vae.state_dict()), families.VAE_PREFIX))
    for entry, encoder in zip(reference["text_encoders"], encoders, strict=True):
        convert = ldm_layout.clip_to_ldm if entry["layout"] == "clip" else ldm_layout.openclip_to_ldm
        tensors.update(ldm_layout.add_prefix(convert(encoder.state_dict()), entry["prefix"]))
    return tensors


@pytest.mark.parametrize(
    ("family", "tensor_count", "unet_parameters"),
    [("sd1", 1131, 859_520_964), ("sd2", 1226, 865_910_724), ("sdxl", 2514, 2_567_463_684)],
)
def test_full_size_layouts_infer_the_reference_configs(family: str, tensor_count: int, unet_parameters: int) -> None:
    from modules.models.loader import build_unet

    tensors = _meta_reference_checkpoint(family)
    assert len(tensors) == tensor_count
    layout = families.describe_checkpoint(tensors)
    reference = families.family_config(family)
    assert layout.family == family
    for key, value in reference["unet"].items():
        assert layout.unet_config[key] == value, key
    assert layout.vae_config == reference["vae"]
    for spec, entry in zip(layout.text_encoders, reference["text_encoders"], strict=True):
        assert spec.config == entry["config"]
    unet_tensors = {key: value for key, value in tensors.items() if key.startswith(families.UNET_PREFIX)}
    unet = build_unet(unet_tensors, layout.unet_config, torch.device("meta"), torch.float16)
    assert sum(parameter.numel() for parameter in unet.parameters()) == unet_parameters
