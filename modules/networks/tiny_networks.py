"""Random LoRA-family files that fit the tiny checkpoints of `modules.tiny_checkpoint` (same seed),
for tests and benchmarks: kohya LoRA/LoCon (original or diffusers UNet names), PEFT keys, LoHa,
LoKr, (IA)³ and DoRA.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from modules.models.ldm_layout import unet_key_to_ldm

KINDS = ("lora", "lora-diffusers-names", "peft", "loha", "lokr", "ia3", "dora")
RANK = 4
ALPHA = 2.0
UNET_LINEAR = ("to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2")
UNET_CONV = ("conv1", "conv2")
TE_LINEAR = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")


def _targets(model: Any, endings: tuple[str, ...]) -> list[tuple[str, torch.Tensor]]:
    return [
        (name, module.weight)
        for name, module in model.named_modules()
        if any(name.endswith("." + ending) for ending in endings) and isinstance(module, (torch.nn.Linear, torch.nn.Conv2d))
    ]


def _layer(kind: str, weight: torch.Tensor, generator: torch.Generator, strength: float) -> dict[str, torch.Tensor]:
    """The tensors of one layer of `kind` for a weight of this shape."""
    out_features, in_features = weight.shape[:2]
    kernel = tuple(weight.shape[2:])

    def random(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator) * strength

    if kind in ("lora", "lora-diffusers-names", "peft", "dora"):
        tensors = {
            "lora_down.weight": random(RANK, in_features, *kernel),
            "lora_up.weight": random(out_features, RANK, *((1, 1) if kernel else ())),
            "alpha": torch.tensor(ALPHA),
        }
        if kind == "dora":
            tensors["dora_scale"] = weight.detach().float().flatten(1).norm(dim=1, keepdim=True) * 1.5
        return tensors
    if kind == "loha":
        flat = in_features * int(torch.tensor(kernel).prod()) if kernel else in_features
        return {
            "hada_w1_a": random(out_features, RANK),
            "hada_w1_b": random(RANK, flat),
            "hada_w2_a": random(out_features, RANK),
            "hada_w2_b": random(RANK, flat),
            "alpha": torch.tensor(ALPHA),
        }
    if kind == "lokr":
        flat = (in_features // 4) * (int(torch.tensor(kernel).prod()) if kernel else 1)
        return {
            "lokr_w1": random(4, 4) + 1.0,
            "lokr_w2_a": random(out_features // 4, RANK),
            "lokr_w2_b": random(RANK, flat),
            "alpha": torch.tensor(ALPHA),
        }
    if kind == "ia3":
        return {"weight": random(out_features) * 5, "on_input": torch.tensor(0)}
    raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


def build_tiny_network(
    components: Any, kind: str = "lora", *, seed: int = 1, strength: float = 0.3, parts: tuple[str, ...] = ("unet", "te")
) -> dict[str, torch.Tensor]:
    """A random network state dict for the tiny `components` (from `build_tiny_components`)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    generator = torch.Generator().manual_seed(seed)
    tensors: dict[str, torch.Tensor] = {}
    if "unet" in parts:
        unet = components.unet
        endings = UNET_LINEAR + (UNET_CONV if kind != "ia3" else ())
        for name, weight in _targets(unet, endings):
            if kind == "peft":
                prefix = f"unet.{name}."
            elif kind == "lora-diffusers-names":
                prefix = "lora_unet_" + name.replace(".", "_") + "."
            else:
                prefix = "lora_unet_" + unet_key_to_ldm(name + ".weight", unet.config).removesuffix(".weight").replace(".", "_") + "."
            for suffix, value in _layer(kind, weight, generator, strength).items():
                tensors[prefix + _peft_suffix(kind, suffix)] = value
    if "te" in parts:
        encoders = components.text_encoders
        for index, encoder in enumerate(encoders):
            for module_name, weight in _targets(encoder, TE_LINEAR):
                name = "text_model." + module_name.removeprefix("text_model.")  # the name files use
                if kind == "peft":
                    prefix = ("text_encoder." if index == 0 else "text_encoder_2.") + name + "."
                else:
                    part = "lora_te_" if len(encoders) == 1 else f"lora_te{index + 1}_"
                    prefix = part + name.replace(".", "_") + "."
                for suffix, value in _layer(kind, weight, generator, strength).items():
                    tensors[prefix + _peft_suffix(kind, suffix)] = value
    return {key: value.to(torch.float16) if value.is_floating_point() else value for key, value in tensors.items()}


def _peft_suffix(kind: str, suffix: str) -> str:
    if kind != "peft":
        return suffix
    return {"lora_down.weight": "lora_A.weight", "lora_up.weight": "lora_B.weight"}.get(suffix, suffix)


def write_network(tensors: dict[str, torch.Tensor], out: Path, output_name: str | None = None, extra: dict[str, str] | None = None) -> Path:
    """Write a network state dict as .safetensors with kohya-style ``ss_*`` header metadata."""
    from safetensors.torch import save_file

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    metadata = {
        "ss_output_name": output_name or out.stem,
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(RANK),
        "ss_network_alpha": str(ALPHA),
        "ss_tag_frequency": json.dumps({"tiny": {"random": 1}}),
    }
    metadata.update(extra or {})
    save_file({key: value.contiguous() for key, value in tensors.items()}, str(out), metadata=metadata)
    return out
