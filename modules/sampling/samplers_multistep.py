"""Linear multistep samplers on the noise prediction: LMS and PLMS."""

from __future__ import annotations

from numpy.polynomial import Polynomial
from torch import Tensor

from modules.sampling.samplers_common import SamplingContext, derivative, sigma_list

LMS_ORDER = 4


def linear_multistep_coefficients(nodes: list[float], start: float, end: float) -> list[float]:
    """Weights ``w_j = integral_start^end L_j(s) ds`` of the Lagrange basis through ``nodes``.

    ``sum_j w_j * f(nodes[j])`` integrates the interpolating polynomial of ``f`` over ``[start, end]``.
    """
    # Integrate in u = s - start so the antiderivative vanishes at the lower limit (no cancellation).
    weights = []
    for index, node in enumerate(nodes):
        others = [other for position, other in enumerate(nodes) if position != index]
        basis = Polynomial.fromroots([other - start for other in others]) if others else Polynomial([1.0])
        denominator = 1.0
        for other in others:
            denominator *= node - other
        weights.append(float((basis / denominator).integ()(end - start)))
    return weights


def sample_lms(context: SamplingContext, x: Tensor, sigmas: Tensor) -> Tensor:
    """Linear multistep method of order up to 4 in sigma (Adams–Bashforth on the PF-ODE slope).

    The coefficients integrate the Lagrange polynomial through the last slopes over the
    next sigma interval (as in Karras et al.'s k-diffusion LMS, option ``"order"``). One
    model call per step.
    """
    order = int(context.options.get("order", LMS_ORDER))
    levels = sigma_list(sigmas)
    slopes: list[Tensor] = []  # newest first
    for step in range(len(levels) - 1):
        sigma, sigma_next = levels[step], levels[step + 1]
        denoised = context.model_x0(x, sigma)
        slopes.insert(0, derivative(x, sigma, denoised))
        del slopes[order:]
        nodes = [levels[step - back] for back in range(len(slopes))]
        weights = linear_multistep_coefficients(nodes, sigma, sigma_next)
        for weight, slope in zip(weights, slopes, strict=True):
            x = x + slope * weight
        context.report(step, x, denoised, sigma, sigma_next)
    return x


def sample_plms(context: SamplingContext, x: Tensor, sigmas: Tensor) -> Tensor:
    """PLMS: pseudo linear multistep (Liu et al. 2022, "Pseudo Numerical Methods for Diffusion Models").

    Adams–Bashforth combinations of the last 1..4 noise predictions, applied with the
    DDIM transfer (``x' = x + (sigma_next - sigma) * eps`` in sigma space).  The first
    step is a pseudo improved-Euler (Heun) step, so it costs an extra model call
    (skipped when that step already ends at sigma 0).
    """
    levels = sigma_list(sigmas)
    previous_noises: list[Tensor] = []  # newest first, at most 3
    for step in range(len(levels) - 1):
        sigma, sigma_next = levels[step], levels[step + 1]
        noise = derivative(x, sigma, context.model_x0(x, sigma))
        if not previous_noises:
            combined = noise
            if sigma_next > 0.0:
                x_euler = x + noise * (sigma_next - sigma)
                noise_next = derivative(x_euler, sigma_next, context.model_x0(x_euler, sigma_next))
                combined = (noise + noise_next) * 0.5
        elif len(previous_noises) == 1:
            combined = (noise * 3.0 - previous_noises[0]) / 2.0
        elif len(previous_noises) == 2:
            combined = (noise * 23.0 - previous_noises[0] * 16.0 + previous_noises[1] * 5.0) / 12.0
        else:
            combined = (noise * 55.0 - previous_noises[0] * 59.0 + previous_noises[1] * 37.0 - previous_noises[2] * 9.0) / 24.0
        denoised = x - combined * sigma
        x = x + combined * (sigma_next - sigma)
        previous_noises.insert(0, noise)
        del previous_noises[3:]
        context.report(step, x, denoised, sigma, sigma_next)
    return x
