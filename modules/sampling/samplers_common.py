"""Shared plumbing for the sampler implementations.

Conventions (k-diffusion): ``x = x0 + sigma * eps``; the model is a callable
``denoise(x, sigma[batch]) -> x0``; ``sigmas`` is descending and ends in 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from modules.sampling.discrete import DiscreteSchedule

Denoiser = Callable[[Tensor, Tensor], Tensor]
NoiseSampler = Callable[[Tensor, Tensor], Tensor]
StepCallback = Callable[[dict[str, Any]], None]


@dataclass
class SamplingContext:
    """What a sampler function needs besides ``x`` and ``sigmas``.

    ``options`` holds sampler-specific settings (documented on each sampler);
    ``s_churn``/``s_tmin``/``s_tmax`` are the Karras "churn" settings used by
    Euler, Heun and DPM2.
    """

    denoise: Denoiser
    noise_sampler: NoiseSampler | None = None
    callback: StepCallback | None = None
    eta: float = 0.0
    s_noise: float = 1.0
    s_churn: float = 0.0
    s_tmin: float = 0.0
    s_tmax: float = math.inf
    model: DiscreteSchedule | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    denoise_calls: int = 0

    def model_x0(self, x: Tensor, sigma: float) -> Tensor:
        """The model's clean-latent prediction at noise level ``sigma`` (one model call)."""
        self.denoise_calls += 1
        sigma_batch = torch.full((x.shape[0],), sigma, dtype=x.dtype, device=x.device)
        return self.denoise(x, sigma_batch)

    def noise(self, x: Tensor, sigma: float, sigma_next: float) -> Tensor:
        """Fresh unit-variance noise shaped like ``x`` for the interval ``sigma -> sigma_next``."""
        if self.noise_sampler is None:
            return torch.randn_like(x)
        sigma_tensor = torch.tensor(sigma, dtype=x.dtype, device=x.device)
        sigma_next_tensor = torch.tensor(sigma_next, dtype=x.dtype, device=x.device)
        return self.noise_sampler(sigma_tensor, sigma_next_tensor).to(x)

    def report(self, step: int, x: Tensor, denoised: Tensor, sigma: float, sigma_next: float, **extra: Any) -> None:
        """Call the progress callback after a step; its exceptions propagate unchanged."""
        if self.callback is not None:
            self.callback({"i": step, "x": x, "denoised": denoised, "sigma": sigma, "sigma_next": sigma_next, **extra})


def sigma_list(sigmas: Tensor) -> list[float]:
    """The schedule as Python floats (scalar coefficient math is done in float64)."""
    values = [float(value) for value in torch.as_tensor(sigmas).flatten()]
    if len(values) < 2:
        raise ValueError("sigmas: need at least two values (one step)")
    return values


def derivative(x: Tensor, sigma: float, denoised: Tensor) -> Tensor:
    """Probability-flow ODE slope ``dx/dsigma = (x - x0) / sigma`` (the predicted noise)."""
    return (x - denoised) / sigma


def ancestral_split(sigma: float, sigma_next: float, eta: float = 1.0) -> tuple[float, float]:
    """Split a step ``sigma -> sigma_next`` into a deterministic part and fresh noise.

    Returns ``(sigma_down, sigma_up)`` with ``sigma_down**2 + sigma_up**2 == sigma_next**2``:
    step deterministically to ``sigma_down``, then add ``sigma_up`` of new noise.  ``eta``
    scales the DDPM-style posterior noise (eta=1 is ancestral sampling, 0 is the ODE).
    """
    if eta <= 0.0 or sigma_next <= 0.0:
        return sigma_next, 0.0
    posterior = sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2
    sigma_up = min(sigma_next, eta * math.sqrt(max(posterior, 0.0)))
    sigma_down = math.sqrt(max(sigma_next**2 - sigma_up**2, 0.0))
    return sigma_down, sigma_up


def churn_sigma(context: SamplingContext, sigma: float, step_count: int) -> float:
    """Karras et al. (2022) stochastic "churn": the raised noise level ``sigma_hat`` for this step."""
    if context.s_churn <= 0.0 or not context.s_tmin <= sigma <= context.s_tmax:
        return sigma
    gamma = min(context.s_churn / step_count, math.sqrt(2.0) - 1.0)
    return sigma * (gamma + 1.0)


def apply_churn(context: SamplingContext, x: Tensor, sigma: float, sigma_hat: float) -> Tensor:
    """Add the noise that takes ``x`` from level ``sigma`` up to ``sigma_hat``."""
    if sigma_hat <= sigma:
        return x
    extra = math.sqrt(sigma_hat**2 - sigma**2)
    return x + context.noise(x, sigma, sigma_hat) * context.s_noise * extra


def log_step(sigma: float, sigma_next: float) -> float:
    """Step size in ``lambda = -log(sigma)`` (half log-SNR), the variable of DPM-Solver."""
    return math.log(sigma) - math.log(sigma_next)
