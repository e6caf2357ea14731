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

    `cond` and `uncond` are either fixed `Conditioning`s or `BatchConditioning` schedules (prompt
    editing, alternation, AND); a schedule is looked up on every evaluation at the number of model
    evaluations made before it, which is how A1111 counts schedule steps (one per evaluation, so
    samplers with two evaluations per step move through the schedule twice as fast). With AND sub-prompts the guided result is
    uncond + Σ wᵢ·cfg·(condᵢ − uncond). Cond and uncond with different token counts (long prompts)
    run as two model calls, as A1111 does by default.
    """

    def __init__(
        self,
        model: Callable[[torch.Tensor, torch.Tensor, Conditioning], torch.Tensor],
        cond: Conditioning | Any,
        uncond: Conditioning | Any | None,
        cfg_scale: float,
        *,
        total_steps: int,
        hooks: DenoiserHooks | None = None,
        check: Callable[[], None] = lambda: None,
        empty_chunk: torch.Tensor | None = None,
    ) -> None:
        self.model = model
        self.empty_chunk = empty_chunk
        self.cond_schedule = cond
        self.uncond_schedule = uncond
        self.cfg_scale = cfg_scale
        self.total_steps = total_steps
        self.hooks = hooks or DenoiserHooks()
        self.check = check
        self.step = 0
        self.calls = 0
        self._stacked: tuple[Conditioning, Conditioning, Conditioning] | None = None

    @property
    def cond(self) -> Conditioning:
        """The positive conditioning rows for the next model evaluation."""
        return _rows_at(self.cond_schedule, self.calls)[0]

    @cond.setter
    def cond(self, value: Conditioning | Any) -> None:
        self.cond_schedule = value

    @property
    def uncond(self) -> Conditioning | None:
        """The negative conditioning for the next model evaluation (None without guidance)."""
        return None if self.uncond_schedule is None else _rows_at(self.uncond_schedule, self.calls)[0]

    @uncond.setter
    def uncond(self, value: Conditioning | Any | None) -> None:
        self.uncond_schedule = value

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
        # A1111 advances the prompt schedule once per model evaluation (so twice per step for Heun).
        schedule_step = self.calls - 1
        cond_rows, weights = _rows_at(self.cond_schedule, schedule_step)
        uncond_rows = None if self.uncond_schedule is None else _rows_at(self.uncond_schedule, schedule_step)[0]
        params = CFGDenoiserParams(x, None, sigma, self.step, self.total_steps, cond_rows, uncond_rows, self)
        for hook in self.hooks.before:
            hook(params)
        x, sigma, cond, uncond = params.x, params.sigma, params.text_cond, params.text_uncond
        if weights is None or len(cond) != sum(len(pairs) for pairs in weights):
            weights = [[(index, 1.0)] for index in range(batch)]
        plain = all(pairs == [(index, 1.0)] for index, pairs in enumerate(weights))

        guided = uncond is not None and (self.cfg_scale != 1.0 or not plain)
        if plain:
            x_cond, sigma_cond = x, sigma
        else:
            rows = [index for index, pairs in enumerate(weights) for _ in pairs]
            x_cond, sigma_cond = x[rows], sigma[rows]
        predictions = self._run_both(x_cond, sigma_cond, cond, x, sigma, uncond) if guided else self.model(x_cond, sigma_cond, cond)

        denoised_params = CFGDenoisedParams(predictions, self.step, self.total_steps, self.model)
        for hook in self.hooks.denoised:
            hook(denoised_params)
        predictions = denoised_params.x

        cond_count = x_cond.shape[0]
        if guided and plain:
            cond_part, uncond_part = predictions[:cond_count], predictions[cond_count:]
            result = uncond_part + (cond_part - uncond_part) * self.cfg_scale
        elif guided:
            uncond_part = predictions[cond_count:]
            result = uncond_part.clone()
            for image, pairs in enumerate(weights):
                for row, weight in pairs:
                    result[image] += (predictions[row] - uncond_part[image]) * (weight * self.cfg_scale)
        elif plain:
            result = predictions
        else:
            result = torch.stack([sum(predictions[row] * weight for row, weight in pairs) for pairs in weights])

        after = AfterCFGCallbackParams(result, self.step, self.total_steps)
        for hook in self.hooks.after_cfg:
            hook(after)
        return after.x

    def _run_both(
        self, x_cond: torch.Tensor, sigma_cond: torch.Tensor, cond: Conditioning, x: torch.Tensor, sigma: torch.Tensor, uncond: Conditioning
    ) -> torch.Tensor:
        """Predictions for the cond rows then the uncond rows: one stacked call when their token
        counts match (after padding the shorter with `empty_chunk` states, when given), else two calls."""
        if self.empty_chunk is not None:
            width = max(cond.cross_attention.shape[1], uncond.cross_attention.shape[1])
            cond, uncond = _pad_with_empty_chunks(cond, self.empty_chunk, width), _pad_with_empty_chunks(uncond, self.empty_chunk, width)
        if cond.cross_attention.shape[1] == uncond.cross_attention.shape[1]:
            stacked = self._stack(cond, uncond)
            return self.model(torch.cat([x_cond, x]), torch.cat([sigma_cond, sigma]), stacked)
        return torch.cat([self.model(x_cond, sigma_cond, cond), self.model(x, sigma, uncond)])


def _pad_with_empty_chunks(conditioning: Conditioning, empty_chunk: torch.Tensor, width: int) -> Conditioning:
    """`conditioning` with whole empty-prompt chunks appended up to `width` tokens (A1111's
    "pad prompt/negative prompt" setting)."""
    states = conditioning.cross_attention
    if states.shape[1] >= width:
        return conditioning
    repeats = (width - states.shape[1]) // empty_chunk.shape[1]
    if repeats <= 0:
        return conditioning
    padding = empty_chunk.to(states.device, states.dtype).expand(states.shape[0], -1, -1).repeat(1, repeats, 1)
    return Conditioning(torch.cat([states, padding], dim=1), conditioning.pooled, conditioning.time_ids, dict(conditioning.extra))


def _rows_at(conditioning: Any, step: int) -> tuple[Conditioning, list[list[tuple[int, float]]] | None]:
    """A fixed Conditioning as it is, or a schedule's rows and AND weights at `step`."""
    if isinstance(conditioning, Conditioning):
        return conditioning, None
    rows = conditioning.at_step(step)
    return rows.rows, rows.weights
