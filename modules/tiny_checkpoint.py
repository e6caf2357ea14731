"""Build tiny random-weight SD1/SD2/SDXL checkpoints in the A1111 single-file layout (also the
inpainting variants ``sd1-inpaint``/``sdxl-inpaint`` with 9-channel UNets and ``sd1-pix2pix`` with 8).

They exercise the whole loading and generation path in seconds on a CPU, without
real weights. Usage::

    python -m modules.tiny_checkpoint --arch sd1 --out models/Stable-diffusion/tiny-sd1.safetensors

Sizes (the real vocabulary of 49408 tokens and 77 positions are kept, so the bundled
tokenizers work; the 49408-row token embeddings dominate the file size):

* UNet: 2 levels of 32 and 64 channels, 2 resnets per level, 32-group norms; SD1/SD2
  have attention on the first level, SDXL on the second (with transformer depth 2,
  as SDXL's deeper levels) plus ``text_time`` conditioning with 256-wide time ids.
* VAE: 4 levels of 32 channels (3 downsamples, so the real factor 8), 1 resnet per
  level, 4 latent channels.
* Text encoders: CLIP ViT-L stand-in of width 32 with 2 layers; SD2's OpenCLIP stand-in
  of width 32 with 3 blocks in the file (the last is dropped at load time, as SD2 uses
  the penultimate block); SDXL's bigG stand-in of width 48, 2 layers, projection 40.

Weights are drawn from ``torch.manual_seed(seed)`` with the libraries' default
initialisation and rounded to float16, which is how they are stored.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from modules.models import ldm_layout
from modules.models.families import UNET_PREFIX, VAE_PREFIX, family_config
from modules.models.loader import scaled_linear_alphas_cumprod

BASE_ARCHITECTURES = ("sd1", "sd2", "sdxl")
# variants: (base architecture, UNet input channels); inpainting UNets take 4 latent + 1 mask + 4
# masked-image channels, instruct-pix2pix ones 4 latent + 4 image channels
VARIANTS = {"sd1-inpaint": ("sd1", 9), "sdxl-inpaint": ("sdxl", 9), "sd1-pix2pix": ("sd1", 8)}
ARCHITECTURES = BASE_ARCHITECTURES + tuple(VARIANTS)
# random kohya-format LoRA files that fit the checkpoint the same seed builds
LORA_ARCHITECTURES = ("sd1-lora", "sdxl-lora")
STORAGE_DTYPE = torch.float16
TEXT_ENCODER_SIZES = {
    "sd1": [{"hidden_size": 32, "num_hidden_layers": 2, "intermediate_size": 64}],
    "sd2": [{"hidden_size": 32, "num_hidden_layers": 2, "intermediate_size": 64}],
    "sdxl": [
        {"hidden_size": 32, "num_hidden_layers": 2, "intermediate_size": 64},
        {"hidden_size": 48, "num_hidden_layers": 2, "intermediate_size": 96, "projection_dim": 40},
    ],
}


@dataclass
class TinyComponents:
    """The diffusers/transformers components of a tiny checkpoint and its original-layout tensors."""

    arch: str
    unet: Any
    vae: Any
    text_encoders: list[Any]
    original_state_dict: dict[str, torch.Tensor] = field(repr=False)


def _round_to_storage(module: torch.nn.Module) -> None:
    """Round parameters to float16 precision so that stored and in-memory weights agree exactly."""
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(parameter.to(STORAGE_DTYPE).to(parameter.dtype))


def _unet_config(arch: str, context_width: int, pooled_width: int | None) -> dict[str, Any]:
    config = family_config(arch)["unet"]
    config.update(sample_size=8, block_out_channels=[32, 64], layers_per_block=2, cross_attention_dim=context_width)
    if arch == "sdxl":
        config.update(
            down_block_types=["DownBlock2D", "CrossAttnDownBlock2D"],
            up_block_types=["CrossAttnUpBlock2D", "UpBlock2D"],
            transformer_layers_per_block=[1, 2],
            attention_head_dim=[1, 1],
            projection_class_embeddings_input_dim=pooled_width + 6 * config["addition_time_embed_dim"],
        )
    else:
        config.update(
            down_block_types=["CrossAttnDownBlock2D", "DownBlock2D"],
            up_block_types=["UpBlock2D", "CrossAttnUpBlock2D"],
            transformer_layers_per_block=[1, 1],
        )
        if arch == "sd2":
            config["attention_head_dim"] = [1, 1]
    return config


def _vae_config(arch: str) -> dict[str, Any]:
    config = family_config(arch)["vae"]
    config.update(sample_size=64, block_out_channels=[32, 32, 32, 32], layers_per_block=1)
    return config


def _text_encoder(entry: dict[str, Any], sizes: dict[str, int]) -> tuple[Any, Any]:
    """(reference model, model whose weights are written); they differ only for SD2's dropped block."""
    import transformers

    model_class = getattr(transformers, entry["class"])
    settings = dict(entry["config"], **sizes)
    settings.setdefault("projection_dim", settings["hidden_size"])
    settings["num_attention_heads"] = max(1, settings["hidden_size"] // 64)
    if not entry.get("drop_last_layer"):
        model = model_class(transformers.CLIPTextConfig(**settings))
        _round_to_storage(model)
        return model, model
    written = model_class(transformers.CLIPTextConfig(**dict(settings, num_hidden_layers=settings["num_hidden_layers"] + 1)))
    _round_to_storage(written)
    reference = model_class(transformers.CLIPTextConfig(**settings))
    dropped = f"encoder.layers.{settings['num_hidden_layers']}."
    kept = {key: value for key, value in written.state_dict().items() if dropped not in key}
    reference.load_state_dict(kept)
    return reference, written


def _encoder_tensors(entry: dict[str, Any], written: Any) -> dict[str, torch.Tensor]:
    state = written.state_dict()
    if entry["layout"] == "clip":
        return ldm_layout.add_prefix(ldm_layout.clip_to_ldm(state), entry["prefix"])
    tensors = ldm_layout.openclip_to_ldm(state)
    if "text_projection" not in tensors:
        width = tensors["token_embedding.weight"].shape[1]
        tensors["text_projection"] = (torch.randn(width, width) * width**-0.5).to(STORAGE_DTYPE).float()
    tensors["logit_scale"] = torch.tensor(4.6052)
    return ldm_layout.add_prefix(tensors, entry["prefix"])


def build_tiny_components(arch: str, seed: int = 0) -> TinyComponents:
    """Create the tiny random components of ``arch`` and their original-layout state dict."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"arch must be one of {ARCHITECTURES}, got {arch!r}")
    from diffusers import AutoencoderKL, UNet2DConditionModel

    variant = arch
    arch, in_channels = VARIANTS.get(variant, (variant, 4))
    torch.manual_seed(seed)
    entries = family_config(arch)["text_encoders"]
    references, tensors = [], {}
    for entry, sizes in zip(entries, TEXT_ENCODER_SIZES[arch], strict=True):
        reference, written = _text_encoder(entry, sizes)
        references.append(reference.eval())
        tensors.update(_encoder_tensors(entry, written))

    context_width = sum(model.config.hidden_size for model in references)
    pooled_width = references[-1].config.projection_dim if arch == "sdxl" else None
    unet = UNet2DConditionModel.from_config(dict(_unet_config(arch, context_width, pooled_width), in_channels=in_channels)).eval()
    vae = AutoencoderKL.from_config(_vae_config(arch)).eval()
    for module in (unet, vae):
        _round_to_storage(module)

    tensors.update(ldm_layout.add_prefix(ldm_layout.unet_to_ldm(unet.state_dict(), unet.config), UNET_PREFIX))
    tensors.update(ldm_layout.add_prefix(ldm_layout.vae_to_ldm(vae.state_dict()), VAE_PREFIX))
    stored = {key: value.to(STORAGE_DTYPE) if value.is_floating_point() else value for key, value in tensors.items()}
    stored["alphas_cumprod"] = scaled_linear_alphas_cumprod()
    return TinyComponents(arch=variant, unet=unet, vae=vae, text_encoders=references, original_state_dict=stored)


def write_checkpoint(state_dict: dict[str, torch.Tensor], out: Path) -> Path:
    """Write an original-layout state dict as .safetensors (or .ckpt by suffix)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    contiguous = {key: value.detach().contiguous() for key, value in state_dict.items()}
    if out.suffix.lower() == ".safetensors":
        from safetensors.torch import save_file

        save_file(contiguous, str(out), metadata={"format": "pt"})
    else:
        torch.save({"state_dict": contiguous}, out)
    return out


def build_tiny_checkpoint(arch: str, out: Path, seed: int = 0) -> Path:
    """Write a tiny random ``arch`` checkpoint to ``out`` (.safetensors or .ckpt) and return the path."""
    return write_checkpoint(build_tiny_components(arch, seed).original_state_dict, out)


def build_tiny_lora(arch: str, out: Path, seed: int = 0) -> Path:
    """Write a random kohya LoRA (UNet linear + conv layers, text encoders) fitting the tiny checkpoint
    built with the same `seed` (`arch` is ``sd1-lora`` or ``sdxl-lora``)."""
    from modules.networks.tiny_networks import build_tiny_network, write_network

    components = build_tiny_components(arch.removesuffix("-lora"), seed)
    return write_network(build_tiny_network(components, "lora", seed=seed + 1), out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a tiny random-weight SD checkpoint in the A1111 layout.")
    parser.add_argument("--arch", choices=ARCHITECTURES + LORA_ARCHITECTURES, required=True)
    parser.add_argument("--out", type=Path, required=True, help="output .safetensors (or .ckpt) path")
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args(argv)
    if arguments.arch in LORA_ARCHITECTURES:
        path = build_tiny_lora(arguments.arch, arguments.out, arguments.seed)
    else:
        path = build_tiny_checkpoint(arguments.arch, arguments.out, arguments.seed)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
