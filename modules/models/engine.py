"""One diffusion engine per loaded checkpoint: text conditioning, the denoiser in sigma space, VAE decode.

The family (sd1, sd2, sdxl) decides how prompts become conditioning; everything after that is shared.
Samplers see the model only as `denoise(x, sigma, conditioning) -> x0`, in k-diffusion scaling
(x = x0 + sigma * eps), which is what A1111's samplers use and what makes seeds reproduce A1111 images.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from modules.models.loader import LoadedCheckpoint
from modules.sampling.discrete import DiscreteSchedule

MAX_PROMPT_TOKENS = 75  # tokens per chunk; longer prompts use several chunks


@dataclass
class Conditioning:
    """Text conditioning for a batch: cross-attention states and, for SDXL, the pooled embedding and
    size conditioning ("time ids")."""

    cross_attention: torch.Tensor
    pooled: torch.Tensor | None = None
    time_ids: torch.Tensor | None = None
    extra: dict[str, torch.Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.cross_attention.shape[0]

    @staticmethod
    def concatenate(items: list[Conditioning]) -> Conditioning:
        """Stack conditionings along the batch axis (the CFG denoiser runs cond and uncond together)."""
        width = max(item.cross_attention.shape[1] for item in items)
        padded = [_pad_tokens(item.cross_attention, width) for item in items]
        pooled = None if items[0].pooled is None else torch.cat([item.pooled for item in items])
        time_ids = None if items[0].time_ids is None else torch.cat([item.time_ids for item in items])
        return Conditioning(torch.cat(padded), pooled, time_ids)


def _pad_tokens(states: torch.Tensor, width: int) -> torch.Tensor:
    """Repeat the last token chunk's final state so cond and uncond of different lengths can batch."""
    if states.shape[1] == width:
        return states
    repeat = states[:, -1:].expand(-1, width - states.shape[1], -1)
    return torch.cat([states, repeat], dim=1)


class DiffusionEngine:
    """Wraps a `LoadedCheckpoint` with the operations a generation needs."""

    def __init__(self, checkpoint: LoadedCheckpoint) -> None:
        self.checkpoint = checkpoint
        self.family = checkpoint.family
        self.device = checkpoint.device
        self.dtype = checkpoint.dtype
        self.schedule = DiscreteSchedule(checkpoint.alphas_cumprod.float())
        self.is_v_prediction = checkpoint.prediction_type == "v_prediction"
        self.embeddings = None
        self._prompt_encoder = None

    # ---- conditioning -------------------------------------------------------------------------
    @property
    def prompt_encoder(self):
        """The `PromptEncoder` (chunks, emphasis, embeddings) for this checkpoint."""
        if self._prompt_encoder is None:
            from modules.prompting.conditioning import PromptEncoder

            self._prompt_encoder = PromptEncoder(self.checkpoint, self.embeddings)
        return self._prompt_encoder

    def use_embeddings(self, database) -> None:
        """Use textual-inversion embeddings from `database` (an `EmbeddingDatabase`), rescanning it
        for this model when its folder changed or it was loaded for another model."""
        self.embeddings = database
        self.prompt_encoder.embeddings = database
        self.reload_embeddings()

    def reload_embeddings(self, *, force: bool = False) -> None:
        """Rescan the embeddings folder if it changed since the last scan (or always with `force`)."""
        database = self.embeddings
        if database is None:
            return
        widths = self.prompt_encoder.encoder_widths()
        if force or database.needs_reload(widths):
            tokenizer = self.checkpoint.tokenizers[0]
            database.load(widths, lambda text: tokenizer([text], add_special_tokens=False, verbose=False)["input_ids"][0])

    def encode_prompts(
        self,
        prompts: list[str],
        *,
        clip_skip: int = 1,
        width: int = 512,
        height: int = 512,
        emphasis: str = "Original",
        comma_padding_backtrack: int = 20,
    ) -> Conditioning:
        """Encode one prompt per batch item with A1111's chunking and emphasis (no scheduling or
        AND: see `modules.prompting.schedules` for those). Texts are padded to the same chunk count."""
        from modules.prompting.conditioning import EncodeSettings

        settings = EncodeSettings(clip_skip, emphasis, comma_padding_backtrack, width, height)
        encoded = self.prompt_encoder.encode(list(prompts), settings)
        return Conditioning.concatenate(encoded.conditionings)

    # ---- denoising ----------------------------------------------------------------------------
    def denoise(
        self, x: torch.Tensor, sigma: torch.Tensor, conditioning: Conditioning, image_conditioning: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Predict the clean latent x0 from `x` at noise level `sigma` (one sigma per batch item).

        `image_conditioning` (inpainting: mask + masked-image latent, 5 channels; instruct-pix2pix: image
        latent, 4 channels) is appended to the scaled input channels for UNets that take more than 4."""
        sigma = sigma.to(torch.float32)
        scale_in = 1.0 / torch.sqrt(sigma**2 + 1.0)
        timestep = self.schedule.sigma_to_t(sigma)
        model_input = (x * scale_in[:, None, None, None]).to(self.dtype)
        if image_conditioning is None and self.unet_in_channels > x.shape[1]:
            image_conditioning = self._blank_image_conditioning(x)
        if image_conditioning is not None:
            model_input = torch.cat([model_input, image_conditioning.to(self.device, self.dtype)], dim=1)
        added = None
        if conditioning.pooled is not None:
            added = {"text_embeds": conditioning.pooled, "time_ids": conditioning.time_ids}
        output = self.checkpoint.unet(
            model_input,
            timestep.to(self.device),
            encoder_hidden_states=conditioning.cross_attention,
            added_cond_kwargs=added,
            return_dict=False,
        )[0].to(torch.float32)
        sigma_b = sigma[:, None, None, None]
        if self.is_v_prediction:
            skip = 1.0 / (sigma_b**2 + 1.0)
            out = -sigma_b / torch.sqrt(sigma_b**2 + 1.0)
            return x * skip + output * out
        return x - output * sigma_b

    # ---- decoding -----------------------------------------------------------------------------
    @torch.inference_mode()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Decode latents to images in [0, 1], shape (B, 3, H, W), float32 on the CPU."""
        vae = self.checkpoint.vae
        scaled = (latents / self.checkpoint.vae_scaling_factor).to(device=self.device, dtype=vae.dtype)
        images = vae.decode(scaled, return_dict=False)[0]
        return ((images.float() + 1.0) / 2.0).clamp(0.0, 1.0).cpu()

    @torch.inference_mode()
    def encode_image(self, images: torch.Tensor, *, scaled: bool = True) -> torch.Tensor:
        """Encode images in [0, 1], shape (B, 3, H, W), to latents (the distribution's mean), float32.
        `scaled` multiplies by the VAE scaling factor, as the sampler's latents are; instruct-pix2pix
        image conditioning uses the unscaled latent."""
        vae = self.checkpoint.vae
        pixels = (images * 2.0 - 1.0).to(device=self.device, dtype=vae.dtype)
        latents = vae.encode(pixels, return_dict=False)[0].mode().float()
        return latents * self.checkpoint.vae_scaling_factor if scaled else latents

    def _blank_image_conditioning(self, x: torch.Tensor) -> torch.Tensor:
        """Image conditioning when none is given (txt2img): for inpainting UNets a full mask over a grey
        image's latent, for instruct-pix2pix UNets zeros."""
        extra = self.unet_in_channels - x.shape[1]
        if extra != x.shape[1] + 1:
            return x.new_zeros(x.shape[0], extra, *x.shape[2:])
        cache = self.__dict__.setdefault("_blank_conditioning", {})
        key = tuple(x.shape[2:])
        if key not in cache:
            grey = self.encode_image(torch.full((1, 3, x.shape[2] * 8, x.shape[3] * 8), 0.5))
            mask = torch.ones(1, 1, *grey.shape[2:], device=grey.device)
            cache.clear()
            cache[key] = torch.cat([mask, grey], dim=1)
        return cache[key].expand(x.shape[0], -1, -1, -1)

    @property
    def unet_in_channels(self) -> int:
        """4 for ordinary checkpoints, 9 for inpainting and 8 for instruct-pix2pix ones."""
        return int(self.checkpoint.unet.config.in_channels)

    @property
    def latent_channels(self) -> int:
        return int(self.checkpoint.unet.config.out_channels)
