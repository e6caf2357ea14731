"""The infotext parameter line of a generated image, with A1111's keys, values and order."""

from __future__ import annotations

from typing import Any

from modules.app.options import Options
from modules.generation.params import Txt2ImgParams

ANCESTRAL_ETA_DEFAULT = 1.0
DDIM_ETA_DEFAULT = 0.0


def generation_parameters(
    params: Txt2ImgParams,
    options: Options,
    *,
    seed: int,
    subseed: int,
    clip_skip: int,
    model_name: str,
    model_hash: str | None,
    vae_name: str | None = None,
    vae_hash: str | None = None,
    version: str = "",
    extra: dict[str, Any] | None = None,
    denoising_strength: float | None = None,
    image_cfg_scale: float | None = None,
) -> dict[str, Any]:
    """Key → value in A1111's order; None values are dropped by the writer. img2img passes
    `denoising_strength`, and `image_cfg_scale` for instruct-pix2pix checkpoints."""
    varied = params.subseed_strength != 0
    resized = params.seed_resize_from_w > 0 and params.seed_resize_from_h > 0
    randn_source = options.randn_source
    values: dict[str, Any] = {
        "Steps": params.steps,
        "Sampler": params.sampler_name,
        "Schedule type": params.scheduler,
        "CFG scale": params.cfg_scale,
        "Image CFG scale": image_cfg_scale,
        "Seed": seed,
        "Size": f"{params.width}x{params.height}",
        "Model hash": model_hash,
        "Model": model_name,
        "VAE hash": vae_hash,
        "VAE": vae_name,
        "Variation seed": subseed if varied else None,
        "Variation seed strength": params.subseed_strength if varied else None,
        "Seed resize from": f"{params.seed_resize_from_w}x{params.seed_resize_from_h}" if resized else None,
        "Denoising strength": denoising_strength,
        "Clip skip": clip_skip if clip_skip > 1 else None,
        "Emphasis": _emphasis(options),
        "ENSD": options.eta_noise_seed_delta or None,
        "RNG": randn_source if randn_source != "GPU" else None,
        "Tiling": "True" if params.tiling else None,
    }
    values.update(_sampler_extras(params))
    values.update(extra or {})
    values["Version"] = version or None
    return values


def _emphasis(options: Options) -> str | None:
    """A1111 records the emphasis mode only when it is not the default "Original"."""
    mode = options.get("emphasis", "Original")
    return None if mode == "Original" else mode


def _sampler_extras(params: Txt2ImgParams) -> dict[str, Any]:
    """A1111 records eta and sigma noise only when they differ from the sampler's defaults."""
    extras: dict[str, Any] = {}
    if params.eta is not None:
        default = DDIM_ETA_DEFAULT if params.sampler_name == "DDIM" else ANCESTRAL_ETA_DEFAULT
        if params.eta != default:
            extras["Eta DDIM" if params.sampler_name == "DDIM" else "Eta"] = params.eta
    if params.s_noise is not None and params.s_noise != 1.0:
        extras["Sigma noise"] = params.s_noise
    return extras
