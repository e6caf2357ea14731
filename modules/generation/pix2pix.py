"""Instruct-pix2pix guidance: three model passes per step (text+image, image only, neither) combined with
a text CFG scale and an image CFG scale, as A1111 does for "edit" checkpoints (8-channel UNets)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from modules.models.engine import Conditioning
from modules.sampling.denoiser import AfterCFGCallbackParams, CFGDenoisedParams, CFGDenoiserParams, DenoiserHooks

ImageModel = Callable[[torch.Tensor, torch.Tensor, Conditioning, torch.Tensor], torch.Tensor]


class EditCFGDenoiser:
    """`denoise(x, sigma) -> x0` for instruct-pix2pix.

    With cond = (prompt, image), image-only = (negative prompt, image) and none = (negative prompt, zero
    image) predictions, the result is
    none + text_scale · (cond − image-only) + image_scale · (image-only − none).
    Hooks fire at the same points as in `CFGDenoiser`; the stacked predictions are ordered cond, image-only,
    none.
    """

    def __init__(
        self,
        model: ImageModel,
        cond: Conditioning | Any,
        uncond: Conditioning | Any,
        image_conditioning: torch.Tensor,
        cfg_scale: float,
        image_cfg_scale: float,
        *,
        total_steps: int,
        hooks: DenoiserHooks | None = None,
        check: Callable[[], None] = lambda: None,
    ) -> None:
        self.model = model
        self.cond = cond
        self.uncond = uncond
        self.image_conditioning = image_conditioning
        self.cfg_scale = cfg_scale
        self.image_cfg_scale = image_cfg_scale
        self.total_steps = total_steps
        self.hooks = hooks or DenoiserHooks()
        self.check = check
        self.step = 0

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        self.check()
        batch = x.shape[0]
        if sigma.ndim == 0:
            sigma = sigma.expand(batch)
        cond, uncond = _fixed_rows(self.cond, self.step, batch), _fixed_rows(self.uncond, self.step, batch)
        params = CFGDenoiserParams(x, self.image_conditioning, sigma, self.step, self.total_steps, cond, uncond, self)
        for hook in self.hooks.before:
            hook(params)
        x, sigma = params.x, params.sigma
        cond, uncond = _fixed_rows(params.text_cond, self.step, batch), _fixed_rows(params.text_uncond, self.step, batch)
        image = params.image_cond if params.image_cond is not None else self.image_conditioning
        stacked = Conditioning.concatenate([cond, uncond, uncond])
        images = torch.cat([image, image, torch.zeros_like(image)])
        predictions = self.model(torch.cat([x, x, x]), torch.cat([sigma, sigma, sigma]), stacked, images)
        denoised = CFGDenoisedParams(predictions, self.step, self.total_steps, self.model)
        for hook in self.hooks.denoised:
            hook(denoised)
        with_both, image_only, neither = denoised.x.split(batch)
        result = neither + self.cfg_scale * (with_both - image_only) + self.image_cfg_scale * (image_only - neither)
        after = AfterCFGCallbackParams(result, self.step, self.total_steps)
        for hook in self.hooks.after_cfg:
            hook(after)
        return after.x


def _fixed_rows(conditioning: Conditioning | Any, step: int, batch: int) -> Conditioning:
    """The rows of a prompt schedule at `step` (prompt editing works); AND sub-prompts are refused."""
    if isinstance(conditioning, Conditioning):
        return conditioning
    rows = conditioning.at_step(step).rows
    if len(rows) != batch:
        raise ValueError("prompt: AND sub-prompts are not supported with instruct-pix2pix checkpoints")
    return rows
