"""Read LoRA-family files into per-layer weight deltas for the loaded model.

Supported key styles:

* kohya: ``lora_unet_<module>`` (original ``input_blocks_1_1_...`` or diffusers ``down_blocks_0_...``
  UNet names), ``lora_te_`` (one text encoder), ``lora_te1_``/``lora_te2_`` (SDXL), with ``.alpha``;
* diffusers/PEFT: ``unet.<module>``, ``text_encoder.<module>``, ``text_encoder_2.<module>`` with
  ``lora_A``/``lora_B`` or ``lora.down``/``lora.up`` (``processor.to_q_lora`` spellings too).

Per layer: LoRA/LoCon (``lora_up``/``lora_down``, optional ``lora_mid`` Tucker core), LoHa
(``hada_w1_a`` ..., optional ``hada_t1``/``hada_t2`` Tucker cores), LoKr (``lokr_w1``/``lokr_w2`` or
their ``_a``/``_b`` factors, optional ``lokr_t2``), (IA)³ (``weight`` and ``on_input``), full
differences (``diff``) and DoRA magnitudes (``dora_scale``; PEFT's ``lora_magnitude_vector``).
Tucker cores are (rank, rank, kh, kw) with factors stored as (rank, out) and (rank, in).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from modules.models.ldm_layout import unet_key_to_ldm

KOHYA_PREFIXES = (("lora_unet_", "unet"), ("lora_te1_", "te1"), ("lora_te2_", "te2"), ("lora_te_", "te"))
PEFT_PREFIXES = (("unet.", "unet"), ("text_encoder_2.", "te2"), ("text_encoder.", "te"), ("te1.", "te1"), ("te2.", "te2"))
PEFT_RENAMES = (
    (".lora_magnitude_vector.weight", ".dora_scale"),
    (".lora_magnitude_vector", ".dora_scale"),
    (".lora_A.weight", ".lora_down.weight"),
    (".lora_B.weight", ".lora_up.weight"),
    (".lora.down.weight", ".lora_down.weight"),
    (".lora.up.weight", ".lora_up.weight"),
    (".lora_linear_layer.down.weight", ".lora_down.weight"),
    (".lora_linear_layer.up.weight", ".lora_up.weight"),
)
PROCESSOR_RENAMES = {"to_q_lora": "to_q", "to_k_lora": "to_k", "to_v_lora": "to_v", "to_out_lora": "to_out.0"}


class NetworkFormatError(ValueError):
    """A file that cannot be applied to the loaded model; the message says why."""


@dataclass
class LayerPatch:
    """The tensors of one layer of a network file, by suffix (``lora_up.weight``, ``alpha``...)."""

    key: str
    part: str  # "unet" or "te"
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        names = self.tensors
        if "lora_up.weight" in names:
            return "lora"
        if "hada_w1_a" in names:
            return "loha"
        if "lokr_w1" in names or "lokr_w1_a" in names:
            return "lokr"
        if "diff" in names:
            return "full"
        if "weight" in names and "on_input" in names:
            return "ia3"
        return "unknown"

    def truncated(self, rank: int) -> LayerPatch:
        """A LoRA layer with only its first `rank` ranks (DyLoRA's ``dyn``); the alpha scale follows."""
        tensors = dict(self.tensors)
        tensors["lora_down.weight"] = tensors["lora_down.weight"][:rank]
        tensors["lora_up.weight"] = tensors["lora_up.weight"][:, :rank]
        if "lora_mid.weight" in tensors:
            tensors["lora_mid.weight"] = tensors["lora_mid.weight"][:rank, :rank]
        return LayerPatch(self.key, self.part, tensors)

    def delta(self, weight: torch.Tensor, multiplier: float, dyn_dim: int | None = None) -> torch.Tensor:
        """The change to add to `weight` (float32, same shape) at `multiplier`; `dyn_dim` keeps only
        that many ranks of a LoRA layer."""
        if dyn_dim is not None and self.kind == "lora":
            return self.truncated(dyn_dim).delta(weight, multiplier)
        kind = self.kind
        builders = {"lora": _lora_delta, "loha": _loha_delta, "lokr": _lokr_delta, "full": _full_delta, "ia3": _ia3_delta}
        if kind not in builders:
            raise NetworkFormatError(f"{self.key}: unsupported layer type (tensors {sorted(self.tensors)})")
        original = weight.float()
        change = builders[kind](self, original)
        if change.numel() != original.numel():
            raise NetworkFormatError(
                f"{self.key}: a {kind} delta of shape {tuple(change.shape)} does not fit a layer of shape {tuple(weight.shape)}"
            )
        change = change.reshape(original.shape)
        if "dora_scale" in self.tensors:
            return _dora(self.tensors["dora_scale"].float().to(original.device), original, change, multiplier)
        return change * multiplier


def _tensor(patch: LayerPatch, name: str, like: torch.Tensor) -> torch.Tensor:
    return patch.tensors[name].to(device=like.device, dtype=torch.float32)


def _alpha_scale(patch: LayerPatch, rank: int) -> float:
    alpha = patch.tensors.get("alpha")
    return 1.0 if alpha is None else float(alpha) / rank


def _lora_delta(patch: LayerPatch, weight: torch.Tensor) -> torch.Tensor:
    up = _tensor(patch, "lora_up.weight", weight)
    down = _tensor(patch, "lora_down.weight", weight)
    rank = down.shape[0]
    if "lora_mid.weight" in patch.tensors:
        mid = _tensor(patch, "lora_mid.weight", weight)
        change = torch.einsum("ijkl,jr,pi->prkl", mid, down.flatten(1), up.flatten(1))
    elif up.dim() == 4 and weight.dim() == 4:
        change = (up.flatten(1) @ down.flatten(1)).reshape(up.shape[0], *down.shape[1:])
    else:
        change = up.flatten(1) @ down.flatten(1)
    return change * _alpha_scale(patch, rank)


def _tucker(core: torch.Tensor, out_factor: torch.Tensor, in_factor: torch.Tensor) -> torch.Tensor:
    """A Tucker-decomposed conv kernel: core (rank, rank, kh, kw), factors (rank, out) and (rank, in)."""
    return torch.einsum("ijkl,ip,jr->prkl", core, out_factor, in_factor.flatten(1)).contiguous()


def _loha_factor(patch: LayerPatch, index: int, weight: torch.Tensor) -> torch.Tensor:
    a, b = _tensor(patch, f"hada_w{index}_a", weight), _tensor(patch, f"hada_w{index}_b", weight)
    if f"hada_t{index}" in patch.tensors:
        return _tucker(_tensor(patch, f"hada_t{index}", weight), a, b)
    return a @ b.flatten(1)


def _loha_delta(patch: LayerPatch, weight: torch.Tensor) -> torch.Tensor:
    w1, w2 = _loha_factor(patch, 1, weight), _loha_factor(patch, 2, weight)
    return (w1 * w2) * _alpha_scale(patch, patch.tensors["hada_w1_b"].shape[0])


def _lokr_factor(patch: LayerPatch, index: int, weight: torch.Tensor) -> tuple[torch.Tensor, int | None]:
    full = f"lokr_w{index}"
    if full in patch.tensors:
        return _tensor(patch, full, weight), None
    a, b = _tensor(patch, f"{full}_a", weight), _tensor(patch, f"{full}_b", weight)
    if f"lokr_t{index}" in patch.tensors:
        return _tucker(_tensor(patch, f"lokr_t{index}", weight), a, b), b.shape[0]
    return a @ b.flatten(1), b.shape[0]


def _lokr_delta(patch: LayerPatch, weight: torch.Tensor) -> torch.Tensor:
    w1, rank1 = _lokr_factor(patch, 1, weight)
    w2, rank2 = _lokr_factor(patch, 2, weight)
    rank = rank2 or rank1
    if weight.dim() == 4:
        out2 = weight.shape[0] // w1.shape[0]
        in2 = weight.shape[1] // w1.shape[1]
        w2 = w2.reshape(out2, in2, *weight.shape[2:])
        w1 = w1.reshape(*w1.shape[:2], 1, 1) if w1.dim() == 2 else w1
    change = torch.kron(w1.contiguous(), w2.contiguous())
    return change * (_alpha_scale(patch, rank) if rank else 1.0)


def _full_delta(patch: LayerPatch, weight: torch.Tensor) -> torch.Tensor:
    return _tensor(patch, "diff", weight)


def _ia3_delta(patch: LayerPatch, weight: torch.Tensor) -> torch.Tensor:
    scale = _tensor(patch, "weight", weight).flatten()
    on_input = bool(patch.tensors["on_input"].flatten()[0])
    shape = [1] * weight.dim()
    shape[1 if on_input else 0] = -1
    return weight * scale.reshape(shape)


def _dora(magnitude: torch.Tensor, weight: torch.Tensor, change: torch.Tensor, multiplier: float) -> torch.Tensor:
    """DoRA: the merged weight is renormalised to the stored magnitude; returns the multiplied change."""
    merged = weight + change
    on_output = magnitude.shape[0] == weight.shape[0] and magnitude.numel() == weight.shape[0]
    dims = tuple(range(1, merged.dim())) if on_output else tuple(index for index in range(merged.dim()) if index != 1)
    norm = torch.linalg.vector_norm(merged, dim=dims, keepdim=True)
    target = merged * (magnitude.reshape(norm.shape) / norm)
    return (target - weight) * multiplier


# ---- module names of the loaded model -----------------------------------------------------------
def _underscored(name: str) -> str:
    return name.replace(".", "_")


def module_table(unet: Any, text_encoders: list[Any]) -> dict[str, dict[str, str]]:
    """{part: {underscored file-side name: module path in our model}} for "unet", "te1", "te2".

    UNet modules are reachable by their diffusers names and by the original (ldm) names
    (``input_blocks_1_1_proj_in``), built with the same key mapping the checkpoint writer uses."""
    tables: dict[str, dict[str, str]] = {"unet": {}}
    for name, module in unet.named_modules():
        if not isinstance(getattr(module, "weight", None), torch.Tensor) or not name:
            continue
        tables["unet"][_underscored(name)] = name
        with contextlib.suppress(KeyError):
            tables["unet"][_underscored(unet_key_to_ldm(name + ".weight", unet.config).removesuffix(".weight"))] = name
    for index, encoder in enumerate(text_encoders):
        table: dict[str, str] = {}
        for name, module in encoder.named_modules():
            if name and isinstance(getattr(module, "weight", None), torch.Tensor):
                # files name CLIP layers "text_model.encoder..."; CLIPTextModel in transformers 5 has no
                # "text_model" level, CLIPTextModelWithProjection has one: accept both spellings
                table[_underscored(name)] = name
                table[_underscored(name.removeprefix("text_model."))] = name
                table["text_model_" + _underscored(name.removeprefix("text_model."))] = name
        tables[f"te{index + 1}"] = table
    return tables


def _peft_split(key: str) -> tuple[str, str] | None:
    old_style = re.fullmatch(r"(.+)\.processor\.(to_\w+)_lora\.(down|up)\.weight", key)
    if old_style:
        module = old_style[1] + "." + PROCESSOR_RENAMES.get(old_style[2] + "_lora", old_style[2])
        return module, f"lora_{old_style[3]}.weight"
    for old, new in PEFT_RENAMES:
        if key.endswith(old):
            key = key[: -len(old)] + new
            break
    for suffix in ("lora_down.weight", "lora_up.weight", "lora_mid.weight", "alpha", "dora_scale", "diff"):
        if key.endswith("." + suffix):
            module = key[: -len(suffix) - 1]
            for old, new in PROCESSOR_RENAMES.items():
                module = module.replace(f".processor.{old}", f".{new}")
            return module, suffix
    return None


def _split_key(key: str) -> tuple[str, str, str] | None:
    """(part, underscored module name, tensor suffix) of one file key, or None when unknown."""
    for prefix, part in KOHYA_PREFIXES:
        if key.startswith(prefix):
            module, _, suffix = key[len(prefix) :].partition(".")
            return part, module, suffix
    for prefix, part in PEFT_PREFIXES:
        if key.startswith(prefix):
            split = _peft_split(key[len(prefix) :])
            if split is None:
                return None
            return part, _underscored(split[0]), split[1]
    return None


@dataclass
class NetworkPatches:
    """A file's layers matched to our model: {(part, module path): LayerPatch} and the keys that did not
    match. Parts are "unet", "te1" (first text encoder) and "te2" (SDXL's second)."""

    layers: dict[tuple[str, str], LayerPatch]
    unmatched: list[str]


def match_layers(state_dict: Mapping[str, torch.Tensor], tables: dict[str, dict[str, str]], label: str) -> NetworkPatches:
    """Group a file's tensors by layer and find each layer in our model. Raises `NetworkFormatError`
    when nothing matches (the file is for another model family or not a network)."""
    grouped: dict[tuple[str, str], LayerPatch] = {}
    unmatched: list[str] = []
    for key, tensor in state_dict.items():
        split = _split_key(key)
        if split is None:
            unmatched.append(key)
            continue
        part, module, suffix = split
        part = "te1" if part == "te" else part
        target = tables.get(part, {}).get(module)
        if target is None:
            unmatched.append(key)
            continue
        entry = grouped.setdefault((part, target), LayerPatch(key.split(".")[0], "unet" if part == "unet" else "te"))
        entry.tensors[suffix] = tensor
    if not grouped:
        sample = ", ".join(list(state_dict)[:3])
        raise NetworkFormatError(f"{label}: no layer of the file matches the loaded model (keys like {sample})")
    return NetworkPatches(grouped, unmatched)
