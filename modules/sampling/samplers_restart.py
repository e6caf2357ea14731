"""Restart sampling (Xu et al. 2023, "Restart Sampling for Improving Generative Processes").

Heun steps on the probability-flow ODE, interrupted by "restarts": after reaching a
low noise level the sample is pushed back up to a higher level with fresh noise and
the interval is integrated again.  The automatic plan mirrors A1111's: below 20
steps it is plain Heun on the given schedule; from 20 steps one restart of 9 steps
(from sigma ~0.1 back up to sigma ~2); from 36 steps two restarts of ``steps // 4``.
The main schedule is then rebuilt as Karras (rho 7) over the remaining steps, so the
total number of steps stays ``len(sigmas) - 1``.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

from modules.sampling.samplers_common import SamplingContext, derivative, sigma_list

RESTART_MIN_STEPS = 20
RESTART_TWICE_MIN_STEPS = 36
RESTART_LOW_SIGMA = 0.1
RESTART_HIGH_SIGMA = 2.0


def karras_levels(count: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> list[float]:
    """``count`` Karras sigmas from sigma_max down to sigma_min (no trailing zero)."""
    ramp = np.linspace(0.0, 1.0, count)
    high, low = sigma_max ** (1.0 / rho), sigma_min ** (1.0 / rho)
    return [float(value) for value in (high + ramp * (low - high)) ** rho]


def _nearest_index(levels: list[float], target: float) -> int:
    return min(range(len(levels)), key=lambda index: (abs(levels[index] - target), index))


def restart_plan(levels: list[float]) -> list[tuple[float, float]]:
    """The ``(sigma_from, sigma_to)`` Heun segments to run, restarts included."""
    step_count = len(levels) - 1
    if step_count < RESTART_MIN_STEPS:
        return list(zip(levels[:-1], levels[1:], strict=True))
    restart_steps, restart_times = 9, 1
    if step_count >= RESTART_TWICE_MIN_STEPS:
        restart_steps, restart_times = step_count // 4, 2
    main = karras_levels(step_count - restart_steps * restart_times, levels[-2], levels[0]) + [0.0]
    low_index = _nearest_index(main, RESTART_LOW_SIGMA)
    high_index = _nearest_index(main, RESTART_HIGH_SIGMA)
    plan: list[tuple[float, float]] = []
    for index in range(len(main) - 1):
        plan.append((main[index], main[index + 1]))
        if index + 1 == low_index and high_index < low_index:
            restart = karras_levels(restart_steps + 1, main[low_index], main[high_index])
            for _ in range(restart_times):
                plan.extend(zip(restart[:-1], restart[1:], strict=True))
    return plan


def sample_restart(context: SamplingContext, x: Tensor, sigmas: Tensor) -> Tensor:
    """Restart sampler: Heun segments from :func:`restart_plan`; on a jump up in sigma,
    ``sqrt(new**2 - old**2)`` of fresh noise is added. Two model calls per segment
    (one for the segment ending at 0); the callback runs once per segment.
    """
    last_sigma: float | None = None
    for index, (sigma, sigma_next) in enumerate(restart_plan(sigma_list(sigmas))):
        if last_sigma is not None and sigma > last_sigma:
            extra = (sigma**2 - last_sigma**2) ** 0.5
            x = x + context.noise(x, last_sigma, sigma) * context.s_noise * extra
        denoised = context.model_x0(x, sigma)
        slope = derivative(x, sigma, denoised)
        step = sigma_next - sigma
        if sigma_next == 0.0:
            x = x + slope * step
        else:
            x_predicted = x + slope * step
            slope_next = derivative(x_predicted, sigma_next, context.model_x0(x_predicted, sigma_next))
            x = x + (slope + slope_next) * 0.5 * step
        context.report(index, x, denoised, sigma, sigma_next)
        last_sigma = sigma_next
    return x
