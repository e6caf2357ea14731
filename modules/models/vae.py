"""VAE weights: normalise any supported VAE layout and convert it for diffusers' ``AutoencoderKL``.

Accepted inputs, as found in full checkpoints and in ``models/VAE`` files:

* original (LDM/A1111) layout, with ``first_stage_model.`` or ``vae.`` prefix or none,
  possibly carrying training leftovers (``loss.*``, ``model_ema.*``) that are dropped;
* diffusers layout (``encoder.down_blocks.0.resnets.0...``), including the older
  attention names ``query/key/value/proj_attn``.

Every input is first brought to the original layout (diffusers input through the
inverse mapping in :mod:`modules.models.ldm_layout`), its config is inferred from
shapes, and diffusers' ``convert_ldm_vae_checkpoint`` produces the final weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from modules.models import ldm_layout
from modules.models.families import VAE_PREFIX, infer_vae_config
from modules.models.safe_load import CheckpointError, read_state_dict

VAE_PREFIXES = (VAE_PREFIX, "vae.")
IGNORED_PREFIXES = ("loss.", "model_ema.")
LEGACY_ATTENTION_NAMES = {
    ".query.": ".to_q.",
    ".key.": ".to_k.",
    ".value.": ".to_v.",
    ".proj_attn.": ".to_out.0.",
}


def _strip_prefix(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    for prefix in VAE_PREFIXES:
        if any(key.startswith(prefix + "encoder.") for key in state_dict):
            return {key[len(prefix) :]: value for key, value in state_dict.items() if key.startswith(prefix)}
    return {key: value for key, value in state_dict.items() if not key.startswith(IGNORED_PREFIXES)}


def _is_diffusers_layout(state_dict: Mapping[str, torch.Tensor]) -> bool:
    return any(key.startswith("encoder.down_blocks.") for key in state_dict)


def _diffusers_to_original(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    renamed = {}
    for key, value in state_dict.items():
        for old, new in LEGACY_ATTENTION_NAMES.items():
            key = key.replace(old, new)
        renamed[key] = value
    try:
        return ldm_layout.vae_to_ldm(renamed)
    except KeyError as error:
        raise CheckpointError(f"unrecognised diffusers VAE parameter: {error}") from error


def original_vae_weights(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Bring a VAE state dict of any supported layout to the un-prefixed original layout."""
    stripped = _strip_prefix(state_dict)
    if _is_diffusers_layout(stripped):
        stripped = _diffusers_to_original(stripped)
    if "encoder.conv_in.weight" not in stripped or "decoder.conv_out.weight" not in stripped:
        raise CheckpointError("not a VAE: encoder/decoder weights not found")
    return stripped


def convert_vae(original: Mapping[str, torch.Tensor], family: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(diffusers config, diffusers state dict) for an un-prefixed original-layout VAE."""
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    config = infer_vae_config(original, family, prefix="")
    converted = convert_ldm_vae_checkpoint(dict(original), config)
    return config, converted


def read_vae_file(path: Path) -> dict[str, torch.Tensor]:
    """Read a standalone VAE file and return its weights in the un-prefixed original layout."""
    try:
        return original_vae_weights(read_state_dict(path))
    except CheckpointError as error:
        message = str(error)
        if not message.startswith(str(path)):
            message = f"{path}: {message}"
        raise CheckpointError(message) from error
