"""Inverse key mapping: diffusers/transformers component state dicts -> original (LDM/A1111) layout.

The loader converts original checkpoints into diffusers components with
diffusers' own conversion functions; this module goes the other way. It is used
to write checkpoints in the layout A1111 reads (``modules.tiny_checkpoint``), and
to work out which original keys a converted component consumed.

Original layout, for reference (prefix ``model.diffusion_model.``):

* ``time_embed.{0,2}``, ``label_emb.0.{0,2}`` (SDXL), ``input_blocks.0.0`` (conv_in),
  ``out.0`` (norm) and ``out.2`` (conv).
* ``input_blocks.N``: for each level, ``layers_per_block`` entries of a resnet (``.0``) and
  an optional spatial transformer (``.1``), then (except at the last level) a
  downsampler ``.0.op``.
* ``middle_block.{0,1,2}``: resnet, transformer, resnet.
* ``output_blocks.N``: for each level from the deepest, ``layers_per_block + 1`` entries
  of resnet ``.0``, optional transformer ``.1`` and, on the last entry of every
  level but the outermost, an upsampler (``.1.conv`` or ``.2.conv`` after a transformer).
* Resnets: ``in_layers.{0,2}``, ``emb_layers.1``, ``out_layers.{0,3}``, ``skip_connection``.

VAE (prefix ``first_stage_model.``): ``encoder.down.I.block.J``, ``encoder.down.I.downsample``,
``{encoder,decoder}.mid.{block_1,attn_1,block_2}`` (attention q/k/v/proj_out are 1x1
convolutions), ``decoder.up.I`` numbered from the lowest resolution *upwards*, so
diffusers' ``up_blocks.0`` is ``up.{n-1}``; ``nin_shortcut``; ``norm_out``.

OpenCLIP text towers (prefix ``cond_stage_model.model.`` or ``conditioner.embedders.1.model.``):
``token_embedding``, ``positional_embedding``, ``transformer.resblocks.N.{ln_1, attn.in_proj_*,
attn.out_proj, ln_2, mlp.c_fc, mlp.c_proj}``, ``ln_final``, ``text_projection`` (stored
transposed relative to a linear layer's weight).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

RESNET_RENAMES = (
    ("norm1", "in_layers.0"),
    ("conv1", "in_layers.2"),
    ("time_emb_proj", "emb_layers.1"),
    ("norm2", "out_layers.0"),
    ("conv2", "out_layers.3"),
    ("conv_shortcut", "skip_connection"),
)
UNET_TOP_LEVEL = {
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "add_embedding.linear_1": "label_emb.0.0",
    "add_embedding.linear_2": "label_emb.0.2",
    "class_embedding.linear_1": "label_emb.0.0",
    "class_embedding.linear_2": "label_emb.0.2",
    "conv_in": "input_blocks.0.0",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
}
VAE_ATTENTION_RENAMES = {
    "group_norm": "norm",
    "to_q": "q",
    "to_k": "k",
    "to_v": "v",
    "to_out.0": "proj_out",
}
OPENCLIP_LAYER_RENAMES = (
    ("layer_norm1", "ln_1"),
    ("layer_norm2", "ln_2"),
    ("self_attn.out_proj", "attn.out_proj"),
    ("mlp.fc1", "mlp.c_fc"),
    ("mlp.fc2", "mlp.c_proj"),
)


def _split_parameter(key: str) -> tuple[str, str]:
    """Split ``a.b.weight`` into (``a.b``, ``weight``)."""
    module, _, parameter = key.rpartition(".")
    return module, parameter


def _rename_resnet(inner: str) -> str:
    for diffusers_name, ldm_name in RESNET_RENAMES:
        if inner == diffusers_name or inner.startswith(diffusers_name + "."):
            return ldm_name + inner[len(diffusers_name) :]
    raise KeyError(f"unknown resnet parameter {inner!r}")


def _has_attention(block_types: list[str], index: int) -> bool:
    return "CrossAttn" in block_types[index]


def unet_key_to_ldm(key: str, config: Mapping[str, Any]) -> str:
    """Original (un-prefixed) name of one diffusers ``UNet2DConditionModel`` parameter."""
    per_level = int(config["layers_per_block"])
    module, parameter = _split_parameter(key)
    if module in UNET_TOP_LEVEL:
        return f"{UNET_TOP_LEVEL[module]}.{parameter}"

    match = re.fullmatch(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key)
    if match:
        level, kind, layer, inner = int(match[1]), match[2], int(match[3]), match[4]
        index = 1 + level * (per_level + 1) + layer
        if kind == "resnets":
            return f"input_blocks.{index}.0.{_rename_resnet(inner)}"
        return f"input_blocks.{index}.1.{inner}"
    match = re.fullmatch(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(\w+)", key)
    if match:
        index = 1 + int(match[1]) * (per_level + 1) + per_level
        return f"input_blocks.{index}.0.op.{match[2]}"

    match = re.fullmatch(r"mid_block\.(resnets|attentions)\.(\d+)\.(.+)", key)
    if match:
        kind, layer, inner = match[1], int(match[2]), match[3]
        if kind == "resnets":
            return f"middle_block.{2 * layer}.{_rename_resnet(inner)}"
        return f"middle_block.1.{inner}"

    match = re.fullmatch(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key)
    if match:
        level, kind, layer, inner = int(match[1]), match[2], int(match[3]), match[4]
        index = level * (per_level + 1) + layer
        if kind == "resnets":
            return f"output_blocks.{index}.0.{_rename_resnet(inner)}"
        return f"output_blocks.{index}.1.{inner}"
    match = re.fullmatch(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(\w+)", key)
    if match:
        level = int(match[1])
        index = level * (per_level + 1) + per_level
        position = 2 if _has_attention(list(config["up_block_types"]), level) else 1
        return f"output_blocks.{index}.{position}.conv.{match[2]}"
    raise KeyError(f"no original-layout name for UNet parameter {key!r}")


def unet_to_ldm(state_dict: Mapping[str, torch.Tensor], config: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Rename a diffusers UNet state dict to the original layout (without ``model.diffusion_model.``)."""
    return {unet_key_to_ldm(key, config): value for key, value in state_dict.items()}


def _vae_resnet_inner(inner: str) -> str:
    return inner.replace("conv_shortcut", "nin_shortcut")


def vae_key_to_ldm(key: str, up_block_count: int) -> str:
    """Original name of one diffusers ``AutoencoderKL`` parameter (without ``first_stage_model.``)."""
    match = re.fullmatch(r"(encoder|decoder)\.conv_norm_out\.(\w+)", key)
    if match:
        return f"{match[1]}.norm_out.{match[2]}"
    match = re.fullmatch(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key)
    if match:
        return f"encoder.down.{match[1]}.block.{match[2]}.{_vae_resnet_inner(match[3])}"
    match = re.fullmatch(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(\w+)", key)
    if match:
        return f"encoder.down.{match[1]}.downsample.conv.{match[2]}"
    match = re.fullmatch(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key)
    if match:
        level = up_block_count - 1 - int(match[1])
        return f"decoder.up.{level}.block.{match[2]}.{_vae_resnet_inner(match[3])}"
    match = re.fullmatch(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(\w+)", key)
    if match:
        level = up_block_count - 1 - int(match[1])
        return f"decoder.up.{level}.upsample.conv.{match[2]}"
    match = re.fullmatch(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.+)", key)
    if match:
        return f"{match[1]}.mid.block_{int(match[2]) + 1}.{_vae_resnet_inner(match[3])}"
    match = re.fullmatch(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.+)\.(\w+)", key)
    if match and match[2] in VAE_ATTENTION_RENAMES:
        return f"{match[1]}.mid.attn_1.{VAE_ATTENTION_RENAMES[match[2]]}.{match[3]}"
    if re.fullmatch(r"(encoder|decoder)\.(conv_in|conv_out)\.\w+|(post_)?quant_conv\.\w+", key):
        return key
    raise KeyError(f"no original-layout name for VAE parameter {key!r}")


def vae_to_ldm(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a diffusers VAE state dict to the original layout; attention projections become 1x1 convs."""
    up_levels = {int(m[1]) for key in state_dict if (m := re.match(r"decoder\.up_blocks\.(\d+)\.", key))}
    up_block_count = max(up_levels) + 1 if up_levels else 0
    converted: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        new_key = vae_key_to_ldm(key, up_block_count)
        if ".mid.attn_1." in new_key and new_key.endswith(".weight") and value.ndim == 2:
            value = value[:, :, None, None]
        converted[new_key] = value
    return converted


def _strip_text_model(key: str) -> str:
    return key.removeprefix("text_model.")


def clip_to_ldm(state_dict: Mapping[str, torch.Tensor], with_position_ids: bool = True) -> dict[str, torch.Tensor]:
    """transformers ``CLIPTextModel`` -> the HF-CLIP layout A1111 stores under ``...transformer.``.

    Keys come out as ``text_model.<name>``. ``with_position_ids`` adds the
    ``embeddings.position_ids`` buffer that most real SD1 files carry.
    """
    converted = {f"text_model.{_strip_text_model(key)}": value for key, value in state_dict.items()}
    if with_position_ids:
        positions = converted["text_model.embeddings.position_embedding.weight"].shape[0]
        converted["text_model.embeddings.position_ids"] = torch.arange(positions, dtype=torch.int64)[None]
    return converted


def openclip_to_ldm(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers ``CLIPTextModel``/``CLIPTextModelWithProjection`` -> OpenCLIP text-tower layout.

    Keys come out relative to the OpenCLIP model (``token_embedding.weight``,
    ``transformer.resblocks.N...``); q/k/v projections are fused into ``in_proj``.
    """
    converted: dict[str, torch.Tensor] = {}
    pending_projections: dict[tuple[int, str], dict[str, torch.Tensor]] = {}
    for raw_key, value in state_dict.items():
        key = _strip_text_model(raw_key)
        if key == "embeddings.token_embedding.weight":
            converted["token_embedding.weight"] = value
        elif key == "embeddings.position_embedding.weight":
            converted["positional_embedding"] = value
        elif key.startswith("final_layer_norm."):
            converted["ln_final." + key.removeprefix("final_layer_norm.")] = value
        elif key == "text_projection.weight":
            converted["text_projection"] = value.T.contiguous()
        elif match := re.fullmatch(r"encoder\.layers\.(\d+)\.self_attn\.([qkv])_proj\.(weight|bias)", key):
            pending_projections.setdefault((int(match[1]), match[3]), {})[match[2]] = value
        elif match := re.fullmatch(r"encoder\.layers\.(\d+)\.(.+)", key):
            inner = match[2]
            for diffusers_name, ldm_name in OPENCLIP_LAYER_RENAMES:
                if inner.startswith(diffusers_name + "."):
                    inner = ldm_name + inner[len(diffusers_name) :]
                    break
            else:
                raise KeyError(f"no OpenCLIP name for text-encoder parameter {raw_key!r}")
            converted[f"transformer.resblocks.{match[1]}.{inner}"] = value
        elif key == "embeddings.position_ids":
            continue
        else:
            raise KeyError(f"no OpenCLIP name for text-encoder parameter {raw_key!r}")
    for (layer, parameter), parts in sorted(pending_projections.items()):
        if set(parts) != {"q", "k", "v"}:
            raise KeyError(f"layer {layer}: incomplete q/k/v {parameter} projections")
        fused = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
        converted[f"transformer.resblocks.{layer}.attn.in_proj_{parameter}"] = fused
    return converted


def add_prefix(state_dict: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """Return a copy of ``state_dict`` with ``prefix`` prepended to every key."""
    return {prefix + key: value for key, value in state_dict.items()}
