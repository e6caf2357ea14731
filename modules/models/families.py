"""Recognise a Stable Diffusion checkpoint's family and infer its component configs from tensor shapes.

Supported families: ``sd1`` (SD1.x, CLIP ViT-L text encoder), ``sd2`` (SD2.x, OpenCLIP
ViT-H) and ``sdxl`` (SDXL base, CLIP ViT-L + OpenCLIP ViT-bigG). Inpainting (9 input
channels) and instruct-pix2pix (8) variants of each are accepted; ``in_channels``
reports which. Other files (SDXL refiner, SD3, Flux, LoRA, VAE, embeddings,
ControlNet...) raise :class:`CheckpointError` naming what they look like.

Sizes (channels, levels, attention placement, transformer depths, text-encoder
widths and depths) come from the weights, so non-standard models load too. The
number of attention heads is not visible in weights and follows each family's
convention: SD1 uses 8 heads per attention layer; SD2 and SDXL use 64-channel heads
(``channels // 64``, at least 1); text encoders use 64-channel heads as well
(CLIP ViT-L: 768 / 64 = 12 heads).

Prediction type (epsilon or v): an explicit override wins; then a ``v_pred`` marker
tensor in the checkpoint; then a same-named ``.yaml`` beside the file
(``parameterization: "v"`` means v-prediction, a yaml without it epsilon); then the
family default. For SD2 the default is v-prediction (the 768-v models and most SD2.1
fine-tunes), unless the file name mentions ``512`` or ``base`` without ``768``
(SD2 512-base is epsilon). A1111 decides SD2 by a test forward pass instead; the
name rule avoids a forward pass at load time.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import torch

from modules.models.safe_load import CheckpointError

CONFIG_ROOT = Path(__file__).resolve().parents[2] / "configs"
FAMILIES = ("sd1", "sd2", "sdxl")
UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
PREDICTION_TYPES = ("epsilon", "v_prediction")
HEAD_CHANNELS = 64
SD1_HEADS = 8
TIME_ID_COUNT = 6

# Old SD1 files store the CLIP text model without the ``text_model.`` level, and SD2-turbo
# stores its OpenCLIP tower under ``conditioner.embedders.0``; A1111 renames both on load.
SD1_CLIP_RENAMES = {
    "cond_stage_model.transformer.embeddings.": "cond_stage_model.transformer.text_model.embeddings.",
    "cond_stage_model.transformer.encoder.": "cond_stage_model.transformer.text_model.encoder.",
    "cond_stage_model.transformer.final_layer_norm.": "cond_stage_model.transformer.text_model.final_layer_norm.",
}
SD2_TURBO_PREFIX = ("conditioner.embedders.0.model.", "cond_stage_model.model.")


@dataclass
class TextEncoderSpec:
    """How to build one text encoder: transformers class, source layout and config."""

    class_name: str
    layout: str
    prefix: str
    tokenizer: str
    config: dict[str, Any]
    drop_last_layer: bool = False


@dataclass
class ModelLayout:
    """Everything the loader needs to know about a checkpoint before building components."""

    family: str
    in_channels: int
    prediction_type: str
    vae_scaling_factor: float
    unet_config: dict[str, Any]
    vae_config: dict[str, Any] | None
    text_encoders: list[TextEncoderSpec] = field(default_factory=list)


@cache
def _family_config(family: str) -> dict[str, Any]:
    with open(CONFIG_ROOT / "models" / f"{family}.json", encoding="utf-8") as handle:
        return json.load(handle)


def family_config(family: str) -> dict[str, Any]:
    """A private copy of the bundled reference config (``configs/models/<family>.json``)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}")
    return copy.deepcopy(_family_config(family))


def normalize_keys(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Apply the layout renames A1111 applies to older/variant files (no tensors are copied)."""
    renamed: dict[str, torch.Tensor] = {}
    is_sd2_turbo = (
        "conditioner.embedders.0.model.token_embedding.weight" in state_dict
        and not any(key.startswith("conditioner.embedders.1.") for key in state_dict)
        and UNET_PREFIX + "label_emb.0.0.weight" not in state_dict
    )
    for key, value in state_dict.items():
        for old, new in SD1_CLIP_RENAMES.items():
            if key.startswith(old):
                key = new + key[len(old) :]
                break
        if is_sd2_turbo and key.startswith(SD2_TURBO_PREFIX[0]):
            key = SD2_TURBO_PREFIX[1] + key[len(SD2_TURBO_PREFIX[0]) :]
        renamed[key] = value
    return renamed


def _foreign_file_message(keys: list[str]) -> str:
    """Explain what a file without a Stable Diffusion UNet looks like."""
    joined = "\n".join(keys[:5000])
    not_checkpoint = "not a Stable Diffusion checkpoint: this looks like "
    if re.search(r"lora_(up|down|A|B)\b|lora_(te|unet)|\.lora\.|hada_w|lokr_w|\.alpha$", joined, re.M):
        return not_checkpoint + "a LoRA/LyCORIS network (put it in models/Lora)"
    if "string_to_param" in joined or "emb_params" in joined or set(keys) <= {"clip_l", "clip_g"}:
        return not_checkpoint + "a textual inversion embedding (put it in embeddings/)"
    if "control_model." in joined or "controlnet_cond_embedding" in joined or "input_hint_block" in joined:
        return not_checkpoint + "a ControlNet model (put it in models/ControlNet)"
    vae_keys = ("encoder.", "decoder.", "quant_conv.", "post_quant_conv.", VAE_PREFIX, "vae.", "loss.", "model_ema.")
    if keys and all(key.startswith(vae_keys) for key in keys):
        return not_checkpoint + "a VAE, not a full checkpoint (put it in models/VAE)"
    if "joint_blocks." in joined:
        return "unsupported architecture: Stable Diffusion 3"
    if "double_blocks." in joined or "single_blocks." in joined:
        return "unsupported architecture: Flux"
    if any(key.startswith(("down_blocks.", "mid_block.")) for key in keys):
        return "unsupported architecture: a diffusers-format model (only single-file checkpoints in the A1111 layout load)"
    if any(key.startswith(UNET_PREFIX) for key in keys):
        return "unsupported architecture: the diffusion model is not an SD1/SD2/SDXL UNet"
    return "unsupported architecture: no Stable Diffusion UNet (model.diffusion_model.*) in the file"


def detect_family(state_dict: Mapping[str, torch.Tensor]) -> str:
    """Return ``"sd1"``, ``"sd2"`` or ``"sdxl"`` for a (normalized) checkpoint, else raise CheckpointError."""
    keys = list(state_dict.keys())
    if UNET_PREFIX + "input_blocks.0.0.weight" not in state_dict:
        raise CheckpointError(_foreign_file_message(keys))
    has_sdxl_clip = "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight" in state_dict
    has_big_g = "conditioner.embedders.1.model.token_embedding.weight" in state_dict
    if has_sdxl_clip and has_big_g:
        if UNET_PREFIX + "label_emb.0.0.weight" not in state_dict:
            raise CheckpointError("unsupported architecture: SDXL text encoders without the SDXL UNet's label embedding")
        return "sdxl"
    if "conditioner.embedders.0.model.token_embedding.weight" in state_dict:
        raise CheckpointError("unsupported architecture: SDXL refiner checkpoints are not supported")
    if any(".noise_augmentor." in key or key.startswith("embedder.model.visual") for key in keys):
        raise CheckpointError("unsupported architecture: Stable Diffusion 2 unCLIP")
    if UNET_PREFIX + "label_emb.weight" in state_dict:
        raise CheckpointError("unsupported architecture: Stable Diffusion x4 upscaler")
    if UNET_PREFIX + "label_emb.0.0.weight" in state_dict:
        raise CheckpointError("unsupported architecture: class-conditioned UNet (label_emb) outside SDXL")
    if "cond_stage_model.model.token_embedding.weight" in state_dict:
        return "sd2"
    if "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight" in state_dict:
        return "sd1"
    raise CheckpointError("unsupported checkpoint: it has a UNet but no SD1/SD2/SDXL text encoder")


def _block_indices(state_dict: Mapping[str, torch.Tensor], name: str) -> list[int]:
    pattern = re.compile(re.escape(UNET_PREFIX + name) + r"\.(\d+)\.")
    return sorted({int(m[1]) for key in state_dict if (m := pattern.match(key))})


def _transformer_depth(state_dict: Mapping[str, torch.Tensor], block: str) -> int:
    pattern = re.compile(re.escape(f"{UNET_PREFIX}{block}.transformer_blocks.") + r"(\d+)\.")
    return len({m[1] for key in state_dict if (m := pattern.match(key))})


def _require(state_dict: Mapping[str, torch.Tensor], key: str, what: str) -> torch.Tensor:
    if key not in state_dict:
        raise CheckpointError(f"incomplete {what}: missing {key}")
    return state_dict[key]


def _first_ending(state_dict: Mapping[str, torch.Tensor], suffix: str) -> torch.Tensor:
    for key, value in state_dict.items():
        if key.startswith(UNET_PREFIX) and key.endswith(suffix):
            return value
    raise CheckpointError(f"unsupported UNet: no tensor ending in {suffix}")


def infer_unet_config(state_dict: Mapping[str, torch.Tensor], family: str, pooled_dim: int | None = None) -> dict[str, Any]:
    """Diffusers ``UNet2DConditionModel`` config for the UNet under ``model.diffusion_model.``."""
    config = family_config(family)["unet"]
    conv_in = _require(state_dict, UNET_PREFIX + "input_blocks.0.0.weight", "UNet")
    model_channels, in_channels = int(conv_in.shape[0]), int(conv_in.shape[1])
    out_channels = int(_require(state_dict, UNET_PREFIX + "out.2.weight", "UNet").shape[0])

    input_indices = _block_indices(state_dict, "input_blocks")
    downsamplers = [n for n in input_indices if UNET_PREFIX + f"input_blocks.{n}.0.op.weight" in state_dict]
    levels = len(downsamplers) + 1
    resnet_blocks = len(input_indices) - 1 - len(downsamplers)
    if resnet_blocks <= 0 or resnet_blocks % levels or input_indices != list(range(len(input_indices))):
        raise CheckpointError("unsupported UNet: input blocks do not form equal levels")
    per_level = resnet_blocks // levels

    channels: list[int] = []
    depths: list[int] = []
    block_types: list[str] = []
    for level in range(levels):
        first = 1 + level * (per_level + 1)
        out_layer = _require(state_dict, UNET_PREFIX + f"input_blocks.{first}.0.out_layers.3.weight", "UNet")
        channels.append(int(out_layer.shape[0]))
        depth = _transformer_depth(state_dict, f"input_blocks.{first}.1")
        depths.append(max(depth, 1))
        block_types.append("CrossAttnDownBlock2D" if depth else "DownBlock2D")

    output_count = len(_block_indices(state_dict, "output_blocks"))
    if output_count != levels * (per_level + 1):
        raise CheckpointError(f"unsupported UNet: {output_count} output blocks for {levels} levels")
    up_types = []
    for up_level in range(levels):
        depth = _transformer_depth(state_dict, f"output_blocks.{up_level * (per_level + 1)}.1")
        expected = depths[levels - 1 - up_level] if block_types[levels - 1 - up_level].startswith("CrossAttn") else 0
        if depth != expected:
            raise CheckpointError("unsupported UNet: output transformer depths differ from the input ones")
        up_types.append("CrossAttnUpBlock2D" if depth else "UpBlock2D")
    middle_depth = _transformer_depth(state_dict, "middle_block.1")
    if middle_depth == 0 or middle_depth != depths[-1]:
        raise CheckpointError("unsupported UNet: middle block transformer depth differs from the last level")

    proj_in = _first_ending(state_dict, ".1.proj_in.weight")
    context = _first_ending(state_dict, "attn2.to_k.weight")
    time_embed_dim = int(_require(state_dict, UNET_PREFIX + "time_embed.0.weight", "UNet").shape[0])

    config.update(
        in_channels=in_channels,
        out_channels=out_channels,
        block_out_channels=channels,
        down_block_types=block_types,
        up_block_types=up_types,
        layers_per_block=per_level,
        transformer_layers_per_block=depths,
        cross_attention_dim=int(context.shape[1]),
        use_linear_projection=proj_in.ndim == 2,
    )
    if family == "sd1":
        config["attention_head_dim"] = SD1_HEADS
    else:
        config["attention_head_dim"] = [max(1, c // HEAD_CHANNELS) for c in channels]
    if time_embed_dim != 4 * model_channels:
        config["time_embedding_dim"] = time_embed_dim
    if model_channels != channels[0]:
        raise CheckpointError("unsupported UNet: first level width differs from the stem width")
    if family == "sdxl":
        adm_in = int(_require(state_dict, UNET_PREFIX + "label_emb.0.0.weight", "SDXL UNet").shape[1])
        config["projection_class_embeddings_input_dim"] = adm_in
        if pooled_dim is not None and (adm_in - pooled_dim) > 0 and (adm_in - pooled_dim) % TIME_ID_COUNT == 0:
            config["addition_time_embed_dim"] = (adm_in - pooled_dim) // TIME_ID_COUNT
    return config


def _count_indices(state_dict: Mapping[str, torch.Tensor], prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    return len({m[1] for key in state_dict if (m := pattern.match(key))})


def infer_vae_config(state_dict: Mapping[str, torch.Tensor], family: str, prefix: str = VAE_PREFIX) -> dict[str, Any]:
    """Diffusers ``AutoencoderKL`` config for an original-layout VAE under ``prefix``."""
    config = family_config(family)["vae"]
    conv_in = _require(state_dict, prefix + "encoder.conv_in.weight", "VAE")
    levels = _count_indices(state_dict, prefix + "encoder.down.")
    if levels == 0:
        raise CheckpointError("incomplete VAE: no encoder.down blocks")
    channels = [int(_require(state_dict, prefix + f"encoder.down.{level}.block.0.conv2.weight", "VAE").shape[0]) for level in range(levels)]
    config.update(
        in_channels=int(conv_in.shape[1]),
        out_channels=int(_require(state_dict, prefix + "decoder.conv_out.weight", "VAE").shape[0]),
        block_out_channels=channels,
        down_block_types=["DownEncoderBlock2D"] * levels,
        up_block_types=["UpDecoderBlock2D"] * levels,
        layers_per_block=_count_indices(state_dict, prefix + "encoder.down.0.block."),
        latent_channels=int(_require(state_dict, prefix + "decoder.conv_in.weight", "VAE").shape[1]),
    )
    return config


def _heads(hidden_size: int) -> int:
    return max(1, hidden_size // HEAD_CHANNELS)


def infer_text_encoder_spec(state_dict: Mapping[str, torch.Tensor], spec: dict[str, Any]) -> TextEncoderSpec:
    """Fill a bundled text-encoder entry's sizes from the checkpoint's tensors."""
    prefix, layout = spec["prefix"], spec["layout"]
    config = dict(spec["config"])
    projection_dim = int(config["projection_dim"])
    if layout == "clip":
        base = prefix + "text_model."
        token = _require(state_dict, base + "embeddings.token_embedding.weight", "CLIP text encoder")
        positions = _require(state_dict, base + "embeddings.position_embedding.weight", "CLIP text encoder")
        layers = _count_indices(state_dict, base + "encoder.layers.")
        intermediate = _require(state_dict, base + "encoder.layers.0.mlp.fc1.weight", "CLIP text encoder")
    else:
        token = _require(state_dict, prefix + "token_embedding.weight", "OpenCLIP text encoder")
        positions = _require(state_dict, prefix + "positional_embedding", "OpenCLIP text encoder")
        layers = _count_indices(state_dict, prefix + "transformer.resblocks.")
        intermediate = _require(state_dict, prefix + "transformer.resblocks.0.mlp.c_fc.weight", "OpenCLIP")
        projection = state_dict.get(prefix + "text_projection")
        if spec["class"] == "CLIPTextModelWithProjection" and projection is not None:
            projection_dim = int(projection.shape[1])
        if spec.get("drop_last_layer"):
            layers -= 1
    if layers < 1:
        raise CheckpointError(f"incomplete text encoder under {prefix}: no layers")
    hidden = int(token.shape[1])
    config.update(
        vocab_size=int(token.shape[0]),
        hidden_size=hidden,
        num_attention_heads=_heads(hidden),
        num_hidden_layers=layers,
        intermediate_size=int(intermediate.shape[0]),
        max_position_embeddings=int(positions.shape[0]),
        projection_dim=projection_dim,
    )
    return TextEncoderSpec(
        class_name=spec["class"],
        layout=layout,
        prefix=prefix,
        tokenizer=spec["tokenizer"],
        config=config,
        drop_last_layer=bool(spec.get("drop_last_layer", False)),
    )


def _yaml_prediction_type(checkpoint_path: Path) -> str | None:
    yaml_path = checkpoint_path.with_suffix(".yaml")
    if not yaml_path.is_file():
        return None
    text = yaml_path.read_text(encoding="utf-8", errors="replace")
    if re.search(r"^\s*parameterization\s*:\s*[\"']?v[\"']?\s*$", text, re.M):
        return "v_prediction"
    return "epsilon"


def decide_prediction_type(
    family: str,
    checkpoint_path: Path | None,
    state_dict: Mapping[str, torch.Tensor],
    override: str | None = None,
) -> str:
    """Epsilon or v-prediction; see the module docstring for the order of the rules."""
    if override is not None:
        if override not in PREDICTION_TYPES:
            raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}, got {override!r}")
        return override
    if "v_pred" in state_dict:
        return "v_prediction"
    if checkpoint_path is not None:
        from_yaml = _yaml_prediction_type(checkpoint_path)
        if from_yaml is not None:
            return from_yaml
    if family == "sd2":
        name = checkpoint_path.name.lower() if checkpoint_path is not None else ""
        if ("512" in name or "base" in name) and "768" not in name:
            return "epsilon"
        return "v_prediction"
    return "epsilon"


def describe_checkpoint(
    state_dict: Mapping[str, torch.Tensor],
    checkpoint_path: Path | None = None,
    prediction_type: str | None = None,
) -> ModelLayout:
    """Detect the family of a normalized state dict and infer every component's config."""
    family = detect_family(state_dict)
    reference = family_config(family)
    encoders = [infer_text_encoder_spec(state_dict, entry) for entry in reference["text_encoders"]]
    pooled_dim = encoders[-1].config["projection_dim"] if family == "sdxl" else None
    unet_config = infer_unet_config(state_dict, family, pooled_dim)
    expected_context = sum(encoder.config["hidden_size"] for encoder in encoders)
    if unet_config["cross_attention_dim"] != expected_context:
        raise CheckpointError(
            f"inconsistent checkpoint: UNet context width {unet_config['cross_attention_dim']} "
            f"does not match the text encoders' {expected_context}"
        )
    has_vae = VAE_PREFIX + "encoder.conv_in.weight" in state_dict
    return ModelLayout(
        family=family,
        in_channels=unet_config["in_channels"],
        prediction_type=decide_prediction_type(family, checkpoint_path, state_dict, prediction_type),
        vae_scaling_factor=float(reference["vae_scaling_factor"]),
        unet_config=unet_config,
        vae_config=infer_vae_config(state_dict, family) if has_vae else None,
        text_encoders=encoders,
    )
