"""DPM-Solver++ samplers (Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling...").

All of them integrate in ``lambda = -log(sigma)`` with the data (x0) prediction,
where a first-order step from ``sigma`` to ``sigma_target`` with clean estimate
``D`` is exactly ``x' = (sigma_target / sigma) * x + (1 - sigma_target / sigma) * D``.
The SDE variants add the noise of the variance-exploding SDE, scaled by ``eta``.
"""

from __future__ import annotations

import math

from torch import Tensor

from modules.sampling.samplers_common import SamplingContext, ancestral_split, log_step, sigma_list


def data_prediction_step(x: Tensor, sigma: float, sigma_target: float, denoised: Tensor) -> Tensor:
    """First-order DPM-Solver++ step (exact for a constant x0 prediction)."""
    ratio = sigma_target / sigma
    return x * ratio + denoised * (1.0 - ratio)


def sample_dpmpp_2s_ancestral(context: SamplingContext, x: Tensor, sigmas: Tensor) -> Tensor:
    """DPM++ 2S a: single-step second-order DPM-Solver++(2S) to ``sigma_down``, then ancestral noise.

    Intermediate point halfway in lambda (r = 1/2). Two model calls per step, one on the last.
    """
    levels = sigma_list(sigmas)
    for step in range(len(levels) - 1):
        sigma, sigma_next = levels[step], levels[step + 1]
        denoised = context.model_x0(x, sigma)
        sigma_down, sigma_up = ancestral_split(sigma, sigma_next, context.eta)
        if sigma_down == 0.0:
            x = denoised
        else:
            sigma_middle = math.sqrt(sigma * sigma_down)
            x_middle = data_prediction_step(x, sigma, sigma_middle, denoised)
            x = data_prediction_step(x, sigma, sigma_down, context.model_x0(x_middle, sigma_middle))
        if sigma_next > 0.0 and sigma_up > 0.0:
            x = x + context.noise(x, sigma, sigma_next) * context.s_noise * sigma_up
        context.report(step, x, denoised, sigma, sigma_next)
    return x


def sample_dpmpp_sde(context: SamplingContext, x: Tensor, sigmas: Tensor) -> Tensor:
    """DPM++ SDE: stochastic DPM-Solver++(2S) with ancestral noise on both sub-steps.

    ``eta`` (default 1) scales the noise; option ``"r"`` (default 1/2) places the
    intermediate point at fraction r of the lambda step. Two model calls per step,
    one on the last (plain denoise to 0).
    """
    fraction = float(context.options.get("r", 0.5))
    weight = 1.0 / (2.0 * fraction)
    levels = sigma_list(sigmas)
    for step in range(len(levels) - 1):
        sigma, sigma_next = levels[step], levels[step + 1]
        denoised = context.model_x0(x, sigma)
        if sigma_next == 0.0:
            x = denoised
        else:
            sigma_middle = sigma * math.exp(-fraction * log_step(sigma, sigma_next))
            sigma_down, sigma_up = ancestral_split(sigma, sigma_middle, context.eta)
            x_middle = data_prediction_step(x, sigma, sigma_down, denoised)
            if sigma_up > 0.0:
                x_middle = x_middle + context.noise(x, sigma, sigma_middle) * context.s_noise * sigma_up
            denoised_middle = context.model_x0(x_middle, sigma_middle)
            sigma_down, sigma_up = ancestral_split(sigma, sigma_next, context.eta)
            combined = denoised * (1.0 - weight) + denoised_middle * weight
            x = data_prediction_step(x, sigma, sigma_down, combined)
            if sigma_up > 0.0:
                x = x + context.noise(x, sigma, sigma_next) * context.s_noise * sigma_up
        context.report(step, x, denoised, sigma, sigma_next)
    return x


def sample_dpmpp_2m(context: SamplingContext, x: Tensor, sigmas: Tensor) -> Tensor:
    """DPM++ 2M: multistep second-order DPM-Solver++(2M), deterministic.

    The previous step's x0 prediction extrapolates the current one; the first and the
    final (to sigma 0) steps are first order. One model call per step.
    """
    levels = sigma_list(sigmas)
    previous_denoised: Tensor | None = None
    for step in range(len(levels) - 1):
        sigma, sigma_next = levels[step], levels[step + 1]
        denoised = context.model_x0(x, sigma)
        estimate = denoised
        if previous_denoised is not None and sigma_next > 0.0:
            ratio = log_step(levels[step - 1], sigma) / log_step(sigma, sigma_next)
            estimate = denoised * (1.0 + 1.0 / (2.0 * ratio)) - previous_denoised * (1.0 / (2.0 * ratio))
        x = data_prediction_step(x, sigma, sigma_next, estimate)
        previous_denoised = denoised
        context.report(step, x, denoised, sigma, sigma_next)
    return x


def _sde_base_step(x: Tensor, sigma: float, sigma_next: float, denoised: Tensor, eta: float) -> Tensor:
    """First-order part of the DPM-Solver++ SDE step (exact for constant x0 when eta noise is added)."""
    step = log_step(sigma, sigma_next)
    return x * (sigma_next / sigma * math.exp(-eta * step)) + denoised * -math.expm1(-step * (1.0 + eta))


def _sde_noise(context: SamplingContext, x: Tensor, sigma: float, sigma_next: float) -> Tensor:
    """The SDE's fresh noise for one step: ``sigma_next * sqrt(1 - exp(-2 * eta * h))``."""
    if context.eta <= 0.0:
        return x
    scale = sigma_next * math.sqrt(-math.expm1(-2.0 * context.eta * log_step(sigma, sigma_next)))
    return x + context.noise(x, sigma, sigma_next) * context.s_noise * scale


def sample_dpmpp_2m_sde(context: SamplingContext, x: Tensor, sigmas: Tensor) -> Tensor:
    """DPM++ 2M SDE: multistep second-order SDE DPM-Solver++ (``eta`` default 1).

    Option ``"solver_type"``: "midpoint" (default) or "heun" for the second-order
    correction ("DPM++ 2M SDE Heun"). One model call per step.
    """
    use_heun = context.options.get("solver_type", "midpoint") == "heun"
    levels = sigma_list(sigmas)
    previous_denoised: Tensor | None = None
    previous_step = 0.0
    for step in range(len(levels) - 1):
        sigma, sigma_next = levels[step], levels[step + 1]
        denoised = context.model_x0(x, sigma)
        if sigma_next == 0.0:
            x = denoised
        else:
            lambda_step = log_step(sigma, sigma_next)
            total = lambda_step * (1.0 + context.eta)
            x = _sde_base_step(x, sigma, sigma_next, denoised, context.eta)
            if previous_denoised is not None:
                inverse_ratio = lambda_step / previous_step
                coefficient = -math.expm1(-total) / -total + 1.0 if use_heun else 0.5 * -math.expm1(-total)
                x = x + (denoised - previous_denoised) * (coefficient * inverse_ratio)
            x = _sde_noise(context, x, sigma, sigma_next)
            previous_step = lambda_step
        previous_denoised = denoised
        context.report(step, x, denoised, sigma, sigma_next)
    return x


def sample_dpmpp_3m_sde(context: SamplingContext, x: Tensor, sigmas: Tensor) -> Tensor:
    """DPM++ 3M SDE: multistep third-order SDE DPM-Solver++ (``eta`` default 1).

    Uses the two previous x0 predictions for first and second divided differences;
    warms up with orders 1 and 2. One model call per step.
    """
    levels = sigma_list(sigmas)
    history: list[tuple[Tensor, float]] = []  # (denoised, lambda step that followed it), newest first
    for step in range(len(levels) - 1):
        sigma, sigma_next = levels[step], levels[step + 1]
        denoised = context.model_x0(x, sigma)
        if sigma_next == 0.0:
            x = denoised
        else:
            lambda_step = log_step(sigma, sigma_next)
            total = lambda_step * (1.0 + context.eta)
            x = _sde_base_step(x, sigma, sigma_next, denoised, context.eta)
            phi_2 = math.expm1(-total) / total + 1.0
            if len(history) >= 2:
                (denoised_1, step_1), (denoised_2, step_2) = history[0], history[1]
                ratio_1, ratio_2 = step_1 / lambda_step, step_2 / lambda_step
                difference_1 = (denoised - denoised_1) / ratio_1
                difference_2 = (denoised_1 - denoised_2) / ratio_2
                first = difference_1 + (difference_1 - difference_2) * (ratio_1 / (ratio_1 + ratio_2))
                second = (difference_1 - difference_2) / (ratio_1 + ratio_2)
                phi_3 = phi_2 / total - 0.5
                x = x + first * phi_2 - second * phi_3
            elif len(history) == 1:
                denoised_1, step_1 = history[0]
                x = x + (denoised - denoised_1) * (phi_2 * lambda_step / step_1)
            x = _sde_noise(context, x, sigma, sigma_next)
            history.insert(0, (denoised, lambda_step))
            del history[2:]
        context.report(step, x, denoised, sigma, sigma_next)
    return x
