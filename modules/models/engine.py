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

MAX_PROMPT_TOKENS = 75


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

    # ---- conditioning -------------------------------------------------------------------------
    @torch.inference_mode()
    def encode_prompts(self, prompts: list[str], *, clip_skip: int = 1, width: int = 512, height: int = 512) -> Conditioning:
        """Encode one prompt per batch item. Prompts longer than 75 tokens are truncated here;
        A1111's chunking and emphasis live in the prompting module."""
        if self.family == "sdxl":
            return self._encode_sdxl(prompts, width, height)
        encoder = self.checkpoint.text_encoders[0]
        ids = self._token_ids(self.checkpoint.tokenizers[0], prompts)
        output = encoder(ids, output_hidden_states=True)
        if clip_skip > 1 and self.family == "sd1":
            hidden = output.hidden_states[-clip_skip]
            hidden = _final_layer_norm(encoder)(hidden)
        else:
            hidden = output.last_hidden_state
        return Conditioning(hidden.to(self.dtype))

    def _encode_sdxl(self, prompts: list[str], width: int, height: int) -> Conditioning:
        states = []
        pooled = None
        for tokenizer, encoder in zip(self.checkpoint.tokenizers, self.checkpoint.text_encoders, strict=True):
            output = encoder(self._token_ids(tokenizer, prompts), output_hidden_states=True)
            states.append(output.hidden_states[-2])
            if hasattr(output, "text_embeds"):
                pooled = output.text_embeds
        cross = torch.cat(states, dim=-1).to(self.dtype)
        # original size, crop top-left, target size: A1111 uses the image size for both sizes.
        time_ids = torch.tensor([[height, width, 0, 0, height, width]], dtype=self.dtype, device=self.device)
        return Conditioning(cross, pooled.to(self.dtype), time_ids.repeat(len(prompts), 1))

    def _token_ids(self, tokenizer, prompts: list[str]) -> torch.Tensor:
        encoded = tokenizer(
            prompts,
            padding="max_length",
            max_length=MAX_PROMPT_TOKENS + 2,
            truncation=True,
            return_tensors="pt",
        )
        return encoded.input_ids.to(self.device)

    # ---- denoising ----------------------------------------------------------------------------
    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, conditioning: Conditioning) -> torch.Tensor:
        """Predict the clean latent x0 from `x` at noise level `sigma` (one sigma per batch item)."""
        sigma = sigma.to(torch.float32)
        scale_in = 1.0 / torch.sqrt(sigma**2 + 1.0)
        timestep = self.schedule.sigma_to_t(sigma)
        model_input = (x * scale_in[:, None, None, None]).to(self.dtype)
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

    @property
    def latent_channels(self) -> int:
        return int(self.checkpoint.unet.config.out_channels)


def _final_layer_norm(encoder) -> torch.nn.Module:
    """The text encoder's final LayerNorm (transformers 5 moved it off `text_model`)."""
    inner = getattr(encoder, "text_model", encoder)
    return inner.final_layer_norm
