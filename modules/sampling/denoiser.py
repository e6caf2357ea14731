"""The one CFG denoiser every sampler calls: runs cond and uncond together, combines them, fires the
per-step hooks and checks for interrupt.

Hooks (the Script issue exposes them as A1111's `on_cfg_denoiser`, `on_cfg_denoised`,
`on_cfg_after_cfg`) are plain callables registered on a `DenoiserHooks` object that belongs to one
generation, so nothing is patched process-wide.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from modules.models.engine import Conditioning


@dataclass
class CFGDenoiserParams:
    """Passed to `before` hooks, called before the model runs each step. Hooks may replace `x`,
    `sigma`, `text_cond` and `text_uncond`; the denoiser uses whatever they leave here."""

    x: torch.Tensor
    image_cond: torch.Tensor | None
    sigma: torch.Tensor
    sampling_step: int
    total_sampling_steps: int
    text_cond: Conditioning
    text_uncond: Conditioning | None
    denoiser: Any = None


@dataclass
class CFGDenoisedParams:
    """Passed to `denoised` hooks, called after the model ran and before cond/uncond are combined.
    `x` holds the stacked predictions (cond rows first, then uncond rows); hooks may change it."""

    x: torch.Tensor
    sampling_step: int
    total_sampling_steps: int
    inner_model: Any


@dataclass
class AfterCFGCallbackParams:
    """Passed to `after_cfg` hooks, called after classifier-free guidance was applied; hooks may
    replace `x` (the guided x0 prediction)."""

    x: torch.Tensor
    sampling_step: int
    total_sampling_steps: int


@dataclass
class DenoiserHooks:
    """Per-generation lists of hook callables, called in registration order."""

    before: list[Callable[[CFGDenoiserParams], None]] = field(default_factory=list)
    denoised: list[Callable[[CFGDenoisedParams], None]] = field(default_factory=list)
    after_cfg: list[Callable[[AfterCFGCallbackParams], None]] = field(default_factory=list)


class CFGDenoiser:
    """`denoise(x, sigma) -> x0` with classifier-free guidance, as samplers expect it.

    `model` is a callable `(x, sigma, conditioning) -> x0` (the engine's `denoise`); `check` is called
    at the start of every model evaluation and raises to interrupt or skip.
    """

    def __init__(
        self,
        model: Callable[[torch.Tensor, torch.Tensor, Conditioning], torch.Tensor],
        cond: Conditioning,
        uncond: Conditioning | None,
        cfg_scale: float,
        *,
        total_steps: int,
        hooks: DenoiserHooks | None = None,
        check: Callable[[], None] = lambda: None,
    ) -> None:
        self.model = model
        self.cond = cond
        self.uncond = uncond
        self.cfg_scale = cfg_scale
        self.total_steps = total_steps
        self.hooks = hooks or DenoiserHooks()
        self.check = check
        self.step = 0
        self.calls = 0
        self._stacked: tuple[Conditioning, Conditioning, Conditioning] | None = None

    def _stack(self, cond: Conditioning, uncond: Conditioning) -> Conditioning:
        """cond and uncond as one batch, computed once unless a hook swapped them."""
        if self._stacked is None or self._stacked[0] is not cond or self._stacked[1] is not uncond:
            self._stacked = (cond, uncond, Conditioning.concatenate([cond, uncond]))
        return self._stacked[2]

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        self.check()
        self.calls += 1
        batch = x.shape[0]
        if sigma.ndim == 0:
            sigma = sigma.expand(batch)
        params = CFGDenoiserParams(x, None, sigma, self.step, self.total_steps, self.cond, self.uncond, self)
        for hook in self.hooks.before:
            hook(params)
        x, sigma, cond, uncond = params.x, params.sigma, params.text_cond, params.text_uncond

        guided = uncond is not None and self.cfg_scale != 1.0
        if guided:
            stacked = self._stack(cond, uncond)
            predictions = self.model(torch.cat([x, x]), torch.cat([sigma, sigma]), stacked)
        else:
            predictions = self.model(x, sigma, cond)

        denoised_params = CFGDenoisedParams(predictions, self.step, self.total_steps, self.model)
        for hook in self.hooks.denoised:
            hook(denoised_params)
        predictions = denoised_params.x

        if guided:
            cond_part, uncond_part = predictions[:batch], predictions[batch:]
            result = uncond_part + (cond_part - uncond_part) * self.cfg_scale
        else:
            result = predictions

        after = AfterCFGCallbackParams(result, self.step, self.total_steps)
        for hook in self.hooks.after_cfg:
            hook(after)
        return after.x
