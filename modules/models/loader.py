"""Load an A1111-layout single-file checkpoint into diffusers/transformers components, offline.

The file is read safely (:mod:`modules.models.safe_load`), its family and component
sizes are inferred (:mod:`modules.models.families`), and diffusers' own
single-file conversion functions rename the weights. Components are created with
empty (meta) parameters and receive the converted tensors by assignment, so the
peak memory is about the file plus the components in their target dtype; source
tensors are released component by component. Configs and tokenizers come from
``configs/``: nothing is ever fetched from a model hub.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

from modules.models import families  # noqa: E402
from modules.models.families import UNET_PREFIX, VAE_PREFIX, ModelLayout, TextEncoderSpec  # noqa: E402
from modules.models.safe_load import CheckpointError, read_state_dict  # noqa: E402
from modules.models.vae import convert_vae, original_vae_weights, read_vae_file  # noqa: E402

TOKENIZER_ROOT = families.CONFIG_ROOT / "tokenizers"
ALPHAS_CUMPROD_KEY = "alphas_cumprod"
TRAIN_TIMESTEPS = 1000
LISTED_KEYS = 5


@dataclass
class LoadedCheckpoint:
    """A checkpoint's components, ready for inference (eval mode, no gradients)."""

    path: Path
    family: str
    prediction_type: str
    unet: Any
    vae: Any
    vae_scaling_factor: float
    text_encoders: list[Any]
    tokenizers: list[Any]
    alphas_cumprod: torch.Tensor
    unet_in_channels: int
    dtype: torch.dtype
    device: torch.device
    vae_name: str | None = None
    layout: ModelLayout | None = field(default=None, repr=False)


def scaled_linear_alphas_cumprod(beta_start: float = 0.00085, beta_end: float = 0.012, steps: int = TRAIN_TIMESTEPS) -> torch.Tensor:
    """Cumulative alpha products of Stable Diffusion's "scaled linear" beta schedule (float32)."""
    betas = torch.linspace(beta_start**0.5, beta_end**0.5, steps, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, dim=0).to(torch.float32)


def _alphas_cumprod(state_dict: Mapping[str, torch.Tensor], family: str) -> torch.Tensor:
    stored = state_dict.get(ALPHAS_CUMPROD_KEY)
    if stored is not None and stored.shape == (TRAIN_TIMESTEPS,):
        values = stored.detach().to(torch.float32).clone()
        if torch.isfinite(values).all() and bool((values[1:] <= values[:-1]).all()) and 0 < values[-1] < 1:
            return values
    schedule = families.family_config(family)["scheduler"]
    return scaled_linear_alphas_cumprod(schedule["beta_start"], schedule["beta_end"], schedule["num_train_timesteps"])


def _few(keys: set[str] | list[str]) -> str:
    listed = sorted(keys)[:LISTED_KEYS]
    more = f" and {len(keys) - LISTED_KEYS} more" if len(keys) > LISTED_KEYS else ""
    return ", ".join(listed) + more


def _assign_weights(
    model: torch.nn.Module, weights: dict[str, torch.Tensor], what: str, device: torch.device, dtype: torch.dtype
) -> torch.nn.Module:
    """Move converted tensors into an empty-weight model; raise CheckpointError on any mismatch."""
    expected = model.state_dict()
    missing = set(expected) - set(weights)
    unexpected = set(weights) - set(expected)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} keys ({_few(missing)})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} keys ({_few(unexpected)})")
        raise CheckpointError(f"{what}: weights do not fit the model: " + "; ".join(parts))
    mismatched = [key for key, value in weights.items() if tuple(value.shape) != tuple(expected[key].shape)]
    if mismatched:
        details = ", ".join(f"{key} {tuple(weights[key].shape)} vs {tuple(expected[key].shape)}" for key in mismatched[:LISTED_KEYS])
        raise CheckpointError(f"{what}: {len(mismatched)} tensors have the wrong shape: {details}")
    prepared: dict[str, torch.Tensor] = {}
    for key in list(weights):
        tensor = weights.pop(key)
        target_dtype = dtype if tensor.is_floating_point() else tensor.dtype
        prepared[key] = tensor.to(device=device, dtype=target_dtype).contiguous()
    model.load_state_dict(prepared, strict=True, assign=True)
    model.to(device)
    model.eval()
    model.requires_grad_(False)
    return model


def _empty_model(factory: Any) -> Any:
    from accelerate import init_empty_weights

    with init_empty_weights():
        return factory()


def _take(state_dict: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """Remove and return every entry under ``prefix`` (the caller then owns the tensors)."""
    keys = [key for key in state_dict if key.startswith(prefix)]
    return {key: state_dict.pop(key) for key in keys}


def build_unet(weights: dict[str, torch.Tensor], config: dict[str, Any], device: torch.device, dtype: torch.dtype) -> Any:
    """UNet2DConditionModel from original-layout weights (keys under ``model.diffusion_model.``)."""
    from diffusers import UNet2DConditionModel
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint

    converted = convert_ldm_unet_checkpoint(weights, config)
    weights.clear()
    model = _empty_model(lambda: UNet2DConditionModel.from_config(config))
    return _assign_weights(model, converted, "UNet", device, dtype)


def build_vae(original: dict[str, torch.Tensor], family: str, device: torch.device, dtype: torch.dtype) -> tuple[Any, dict[str, Any]]:
    """AutoencoderKL from un-prefixed original-layout VAE weights; returns (model, config)."""
    from diffusers import AutoencoderKL

    config, converted = convert_vae(original, family)
    original.clear()
    model = _empty_model(lambda: AutoencoderKL.from_config(config))
    return _assign_weights(model, converted, "VAE", device, dtype), config


def _convert_text_encoder(weights: dict[str, torch.Tensor], spec: TextEncoderSpec, model: Any) -> dict[str, Any]:
    from diffusers.loaders.single_file_utils import convert_ldm_clip_checkpoint, convert_open_clip_checkpoint

    if spec.layout == "clip":
        converted = convert_ldm_clip_checkpoint(weights, remove_prefix=spec.prefix)
        converted.pop("text_model.embeddings.position_ids", None)
    else:
        if spec.drop_last_layer:
            # SD2 conditions on the penultimate block: the last block and the projection go unused.
            last = spec.config["num_hidden_layers"]
            unused = (f"{spec.prefix}transformer.resblocks.{last}.", f"{spec.prefix}text_projection")
            weights = {key: value for key, value in weights.items() if not key.startswith(unused)}
        converted = convert_open_clip_checkpoint(model, weights, prefix=spec.prefix)
    if not hasattr(model, "text_model"):
        converted = {key.removeprefix("text_model."): value for key, value in converted.items()}
    return converted


def build_text_encoder(weights: dict[str, torch.Tensor], spec: TextEncoderSpec, device: torch.device, dtype: torch.dtype) -> Any:
    """CLIPTextModel / CLIPTextModelWithProjection from original-layout weights under ``spec.prefix``."""
    import transformers

    model_class = getattr(transformers, spec.class_name)
    config = transformers.CLIPTextConfig(**spec.config)
    model = _empty_model(lambda: model_class(config))
    converted = _convert_text_encoder(weights, spec, model)
    weights.clear()
    return _assign_weights(model, converted, f"text encoder {spec.prefix}", device, dtype)


def load_tokenizer(kind: str) -> Any:
    """A fresh bundled CLIP tokenizer: ``"clip"`` (pads with ``<|endoftext|>``) or ``"openclip"`` (pads with ``!``)."""
    from transformers import CLIPTokenizer

    folder = TOKENIZER_ROOT / kind
    # Load with the end-of-text pad, then set the real pad token as a plain attribute: registering
    # "!" as a special token at load time would make it split prompts such as "wow!" apart.
    tokenizer = CLIPTokenizer.from_pretrained(str(folder), local_files_only=True, pad_token="<|endoftext|>")
    with open(folder / "special_tokens_map.json", encoding="utf-8") as handle:
        tokenizer.pad_token = json.load(handle)["pad_token"]
    return tokenizer


@contextmanager
def _errors_about(path: Path) -> Iterator[None]:
    """Name ``path`` in every CheckpointError raised inside, and turn conversion failures into one."""
    try:
        yield
    except CheckpointError as error:
        message = str(error)
        raise CheckpointError(message if message.startswith(str(path)) else f"{path}: {message}") from error
    except (KeyError, IndexError) as error:
        raise CheckpointError(f"{path}: cannot convert the weights: {error!r}") from error


def load_vae_weights(path: Path, family: str, device: torch.device, dtype: torch.dtype) -> tuple[Any, dict[str, Any]]:
    """Build an AutoencoderKL from a standalone VAE file; returns (model, config)."""
    with _errors_about(path):
        return build_vae(read_vae_file(path), family, device, dtype)


def load_checkpoint(
    path: Path,
    *,
    device: torch.device,
    dtype: torch.dtype,
    prediction_type: str | None = None,
    vae_path: Path | None = None,
) -> LoadedCheckpoint:
    """Load a single-file SD1/SD2/SDXL checkpoint (A1111 layout) into diffusers components.

    ``dtype`` applies to every floating-point weight (e.g. float16 on CUDA, float32 on
    CPU). ``prediction_type`` overrides detection (``"epsilon"`` or ``"v_prediction"``).
    ``vae_path`` replaces the checkpoint's VAE with a standalone VAE file. Raises
    :class:`CheckpointError` for unreadable, unsafe, foreign or inconsistent files and
    ValueError for an unknown ``prediction_type``.
    """
    path = Path(path)
    device = torch.device(device)
    if prediction_type is not None and prediction_type not in families.PREDICTION_TYPES:
        raise ValueError(f"prediction_type must be one of {families.PREDICTION_TYPES}, got {prediction_type!r}")
    override_vae = None
    if vae_path is not None:
        vae_path = Path(vae_path)
        with _errors_about(vae_path):
            override_vae = read_vae_file(vae_path)

    with _errors_about(path):
        state_dict = families.normalize_keys(read_state_dict(path))
        layout = families.describe_checkpoint(state_dict, path, prediction_type)
        if layout.vae_config is None and override_vae is None:
            raise CheckpointError("the checkpoint contains no VAE; choose a VAE file to use with it")
        alphas_cumprod = _alphas_cumprod(state_dict, layout.family)
        unet = build_unet(_take(state_dict, UNET_PREFIX), layout.unet_config, device, dtype)
        encoders = [build_text_encoder(_take(state_dict, spec.prefix), spec, device, dtype) for spec in layout.text_encoders]
        vae_weights = override_vae if override_vae is not None else original_vae_weights(_take(state_dict, VAE_PREFIX))
        state_dict.clear()
    with _errors_about(vae_path or path):
        vae, layout.vae_config = build_vae(vae_weights, layout.family, device, dtype)

    return LoadedCheckpoint(
        path=path,
        family=layout.family,
        prediction_type=layout.prediction_type,
        unet=unet,
        vae=vae,
        vae_scaling_factor=layout.vae_scaling_factor,
        text_encoders=encoders,
        tokenizers=[load_tokenizer(spec.tokenizer) for spec in layout.text_encoders],
        alphas_cumprod=alphas_cumprod,
        unet_in_channels=layout.in_channels,
        dtype=dtype,
        device=device,
        vae_name=vae_path.name if vae_path is not None else None,
        layout=layout,
    )
