"""Live previews of a running generation: a cheap linear latent→RGB map, or a full VAE decode.

"Approx cheap" multiplies each latent pixel's 4 channels by a per-family 4×3 matrix (the coefficients
A1111 publishes for SD1/SD2 and SDXL latents), giving a low-resolution colour sketch for almost no
cost. "Full" decodes with the VAE, as the final image will be.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

PREVIEW_METHODS = ("Approx cheap", "Full")

# rows: latent channels 1..4; columns: R, G, B
LATENT_RGB_SD = (
    (0.298, 0.207, 0.208),
    (0.187, 0.286, 0.173),
    (-0.158, 0.189, 0.264),
    (-0.184, -0.271, -0.473),
)
LATENT_RGB_SDXL = (
    (0.3448, 0.4168, 0.4395),
    (-0.1953, -0.0290, 0.0250),
    (0.1074, 0.0886, -0.0163),
    (-0.3730, -0.2499, -0.2088),
)


def cheap_approximation(latent: torch.Tensor, family: str) -> Image.Image:
    """One latent (C, h, w) → an RGB image of size (w, h) through the family's linear map."""
    factors = torch.tensor(LATENT_RGB_SDXL if family == "sdxl" else LATENT_RGB_SD, dtype=torch.float32)
    channels = latent.detach().float().cpu()[: factors.shape[0]]
    rgb = torch.einsum("chw,cr->hwr", channels, factors)
    array = ((rgb + 1.0) / 2.0).clamp(0.0, 1.0).mul(255.0).to(torch.uint8).numpy()
    return Image.fromarray(np.ascontiguousarray(array), "RGB")


def preview_image(latents: torch.Tensor, method: str, engine) -> Image.Image:
    """The first image of a batch of denoised latents, by `method` (see `PREVIEW_METHODS`)."""
    if method == "Full":
        decoded = engine.decode(latents[:1])
        array = (decoded[0].permute(1, 2, 0).numpy() * 255.0).astype(np.uint8)
        return Image.fromarray(array)
    return cheap_approximation(latents[0], engine.family)
