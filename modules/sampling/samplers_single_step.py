"""One-step samplers: Euler, Heun, DPM2, DDIM and LCM.

Each function takes ``(context, x, sigmas)`` with ``x`` already at noise level
``sigmas[0]`` and returns the sample at ``sigmas[-1]`` (normally 0).
"""

from __future__ import annotations

import math

from torch import Tensor

from modules.sampling.samplers_common import (
    SamplingContext,
    ancestral_split,
    apply_churn,
    churn_sigma,
    derivative,
    sigma_list,
)


def sample_euler(context: SamplingContext, x: Tensor, sigmas: Tensor) -> Tensor:
    """Euler's method on the probability-flow ODE (Karras et al. 2022, Algorithm 2 without the correction).

    Supports Karras "churn" (``s_churn``/``s_tmin``/``s_tmax``/``s_noise``). One model call per step.
    """
    levels = sigma_list(sigmas)
    step_count = len(levels) - 1
    for step in range(step_count):
        sigma, sigma_next = levels[step], levels[step + 1]
        sigma_hat = churn_sigma(context, sigma, step_count)
        x = apply_churn(context, x, sigma, sigma_hat)
        denoised = context.model_x0(x, sigma_hat)
        x = x + derivative(x, sigma_hat, denoised) * (sigma_next - sigma_hat)
        context.report(step, x, denoised, sigma, sigma_next, sigma_hat=sigma_hat)
    return x


def sample_heun(context: SamplingContext, x: Tensor, sigmas: Tensor) -> Tensor:
    """Heun's second-order method (Karras et al. 2022, "Elucidating the Design Space...", Algorithm 2).

    Two model calls per step, one on the final step to sigma 0 (plain Euler there).
    """
    levels = sigma_list(sigmas)
    step_count = len(levels) - 1
    for step in range(step_count):
        sigma, sigma_next = levels[step], levels[step + 1]
        sigma_hat = churn_sigma(context, sigma, step_count)
        x = apply_churn(context, x, sigma, sigma_hat)
        denoised = context.model_x0(x, sigma_hat)
        slope = derivative(x, sigma_hat, denoised)
        step_size = sigma_next - sigma_hat
        if sigma_next == 0.0:
            x = x + slope * step_size
        else:
            x_predicted = x + slope * step_size
            slope_next = derivative(x_predicted, sigma_next, context.model_x0(x_predicted, sigma_next))
            x = x + (slope + slope_next) * 0.5 * step_size
        context.report(step, x, denoised, sigma, sigma_next, sigma_hat=sigma_hat)
    return x


def dpm2_step(context: SamplingContext, x: Tensor, sigma: float, slope: Tensor, sigma_target: float) -> Tensor:
    """DPM-Solver-2 style midpoint step from ``sigma`` to ``sigma_target`` (midpoint taken in log sigma)."""
    sigma_middle = math.sqrt(sigma * sigma_target)
    x_middle = x + slope * (sigma_middle - sigma)
    slope_middle = derivative(x_middle, sigma_middle, context.model_x0(x_middle, sigma_middle))
    return x + slope_middle * (sigma_target - sigma)


def sample_dpm2(context: SamplingContext, x: Tensor, sigmas: Tensor) -> Tensor:
    """DPM2: second-order midpoint method in log sigma (Karras et al. 2022 / Lu et al. 2022, DPM-Solver-2).

    Two model calls per step, one on the final step to sigma 0 (Euler there).
    """
    levels = sigma_list(sigmas)
    step_count = len(levels) - 1
    for step in range(step_count):
        sigma, sigma_next = levels[step], levels[step + 1]
        sigma_hat = churn_sigma(context, sigma, step_count)
        x = apply_churn(context, x, sigma, sigma_hat)
        denoised = context.model_x0(x, sigma_hat)
        slope = derivative(x, sigma_hat, denoised)
        # The last step (to sigma 0) has no midpoint in log sigma: plain Euler.
        x = x - slope * sigma_hat if sigma_next == 0.0 else dpm2_step(context, x, sigma_hat, slope, sigma_next)
        context.report(step, x, denoised, sigma, sigma_next, sigma_hat=sigma_hat)
    return x


def ddim_noise_split(sigma: float, sigma_next: float, eta: float) -> tuple[float, float]:
    """DDIM's (sigma_down, sigma_up) for one step, from Song et al. (2021) eq. 16 in sigma space.

    With ``a = 1 / (1 + sigma**2)`` (alphas_cumprod of the timesteps), DDIM's noise
    ``eta * sqrt((1 - a_next) / (1 - a) * (1 - a / a_next))`` is divided by ``sqrt(a_next)``
    to move from variance-preserving to k-diffusion scaling.
    """
    if eta <= 0.0 or sigma_next <= 0.0:
        return sigma_next, 0.0
    alpha, alpha_next = 1.0 / (1.0 + sigma**2), 1.0 / (1.0 + sigma_next**2)
    variance_preserving_noise = eta * math.sqrt((1.0 - alpha_next) / (1.0 - alpha) * (1.0 - alpha / alpha_next))
    sigma_up = min(sigma_next, variance_preserving_noise / math.sqrt(alpha_next))
    return math.sqrt(sigma_next**2 - sigma_up**2), sigma_up


def sample_ddim(context: SamplingContext, x: Tensor, sigmas: Tensor) -> Tensor:
    """DDIM (Song et al. 2021, "Denoising Diffusion Implicit Models") in sigma space.

    ``eta`` = 0 (A1111's default) is deterministic and equals Euler in k-diffusion
    scaling; ``eta`` > 0 adds DDIM's posterior noise. One model call per step.
    """
    levels = sigma_list(sigmas)
    for step in range(len(levels) - 1):
        sigma, sigma_next = levels[step], levels[step + 1]
        denoised = context.model_x0(x, sigma)
        sigma_down, sigma_up = ddim_noise_split(sigma, sigma_next, context.eta)
        x = denoised + derivative(x, sigma, denoised) * sigma_down
        if sigma_up > 0.0:
            x = x + context.noise(x, sigma, sigma_next) * context.s_noise * sigma_up
        context.report(step, x, denoised, sigma, sigma_next)
    return x


def sample_lcm(context: SamplingContext, x: Tensor, sigmas: Tensor) -> Tensor:
    """Latent Consistency Model multistep sampling (Luo et al. 2023, Algorithm 1).

    Jump to the model's clean prediction, then re-noise it to the next level with
    fresh noise. One model call per step.
    """
    levels = sigma_list(sigmas)
    for step in range(len(levels) - 1):
        sigma, sigma_next = levels[step], levels[step + 1]
        denoised = context.model_x0(x, sigma)
        x = denoised
        if sigma_next > 0.0:
            x = x + context.noise(x, sigma, sigma_next) * sigma_next
        context.report(step, x, denoised, sigma, sigma_next)
    return x


def sample_euler_ancestral(context: SamplingContext, x: Tensor, sigmas: Tensor) -> Tensor:
    """Euler ancestral: an Euler step down to ``sigma_down`` plus ``sigma_up`` fresh noise (eta default 1).

    The ancestral split follows DDPM's posterior (Ho et al. 2020) in sigma space. One model call per step.
    """
    levels = sigma_list(sigmas)
    for step in range(len(levels) - 1):
        sigma, sigma_next = levels[step], levels[step + 1]
        denoised = context.model_x0(x, sigma)
        sigma_down, sigma_up = ancestral_split(sigma, sigma_next, context.eta)
        x = x + derivative(x, sigma, denoised) * (sigma_down - sigma)
        if sigma_up > 0.0:
            x = x + context.noise(x, sigma, sigma_next) * context.s_noise * sigma_up
        context.report(step, x, denoised, sigma, sigma_next)
    return x


def sample_dpm2_ancestral(context: SamplingContext, x: Tensor, sigmas: Tensor) -> Tensor:
    """DPM2 ancestral: the DPM2 midpoint step down to ``sigma_down``, then ``sigma_up`` fresh noise.

    Two model calls per step, one on the final step (Euler to 0 there).
    """
    levels = sigma_list(sigmas)
    for step in range(len(levels) - 1):
        sigma, sigma_next = levels[step], levels[step + 1]
        denoised = context.model_x0(x, sigma)
        slope = derivative(x, sigma, denoised)
        sigma_down, sigma_up = ancestral_split(sigma, sigma_next, context.eta)
        x = x - slope * sigma if sigma_down == 0.0 else dpm2_step(context, x, sigma, slope, sigma_down)
        if sigma_up > 0.0:
            x = x + context.noise(x, sigma, sigma_next) * context.s_noise * sigma_up
        context.report(step, x, denoised, sigma, sigma_next)
    return x
