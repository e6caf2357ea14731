"""UniPC: unified predictor-corrector (Zhao et al. 2023, "UniPC: A Unified Predictor-Corrector
Framework for Fast Sampling of Diffusion Models"), multistep, data prediction.

Work in ``lambda = -log(sigma)``; with step ``h`` and ``hh = -h`` (data prediction),
``phi_1 = expm1(hh)`` and the base update is ``x_t = (sigma_t / sigma_s) x_s - phi_1 * m_s``.
Higher orders add ``-B(h) * sum_k rho_k * D_k`` with divided differences ``D_k`` of
earlier x0 predictions; the ``rho`` solve the order conditions ``R rho = b`` of the
paper (Theorem 3.1), where ``B(h) = hh`` ("bh1") or ``expm1(hh)`` ("bh2").  The
corrector (UniC) reuses the model call made at the predicted point, so sampling
costs one model call per step.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from modules.sampling.samplers_common import SamplingContext, log_step, sigma_list

UNIPC_ORDER = 3
UNIPC_VARIANTS = ("bh1", "bh2")


def unipc_coefficients(step: float, earlier_ratios: list[float], variant: str) -> tuple[float, float, list[float], list[float]]:
    """Scalars for one UniPC step of order ``len(earlier_ratios) + 1``.

    ``step`` is the lambda step ``h`` > 0; ``earlier_ratios`` holds ``r_k = (lambda_k - lambda_s) / h``
    for the earlier points (negative).  Returns ``(phi_1, B(h), predictor_rhos, corrector_rhos)``;
    the corrector list has one more entry, for the new point.
    """
    if variant not in UNIPC_VARIANTS:
        raise ValueError(f"UniPC variant must be one of {UNIPC_VARIANTS}, got {variant!r}")
    order = len(earlier_ratios) + 1
    hh = -step
    phi_1 = math.expm1(hh)
    scale = hh if variant == "bh1" else math.expm1(hh)
    ratios = [*earlier_ratios, 1.0]
    rows, targets = [], []
    phi_k = phi_1 / hh - 1.0
    factorial = 1.0
    for power in range(1, order + 1):
        rows.append([ratio ** (power - 1) for ratio in ratios])
        targets.append(phi_k * factorial / scale)
        factorial *= power + 1
        phi_k = phi_k / hh - 1.0 / factorial
    matrix = torch.tensor(rows, dtype=torch.float64)
    vector = torch.tensor(targets, dtype=torch.float64)
    if order == 1:
        predictor: list[float] = []
    elif order == 2:
        predictor = [0.5]
    else:
        predictor = torch.linalg.solve(matrix[:-1, :-1], vector[:-1]).tolist()
    corrector = [0.5] if order == 1 else torch.linalg.solve(matrix, vector).tolist()
    return phi_1, scale, predictor, corrector


def sample_unipc(context: SamplingContext, x: Tensor, sigmas: Tensor) -> Tensor:
    """UniPC multistep sampler (options ``"order"`` default 3, ``"variant"`` default "bh1",
    ``"lower_order_final"`` default True; A1111's defaults).

    Warm-up raises the order one step at a time; with ``lower_order_final`` the last
    steps drop back to order 2 and 1.  The final step to sigma 0 is the x0 prediction.
    """
    max_order = int(context.options.get("order", UNIPC_ORDER))
    variant = str(context.options.get("variant", "bh1"))
    lower_order_final = bool(context.options.get("lower_order_final", True))
    levels = sigma_list(sigmas)
    step_count = len(levels) - 1
    history: list[tuple[float, Tensor]] = [(levels[0], context.model_x0(x, levels[0]))]  # (sigma, x0), oldest first
    for step in range(step_count):
        sigma_next = levels[step + 1]
        sigma, current = history[-1]
        order = min(max_order, len(history))
        if lower_order_final:
            order = min(order, step_count - step)
        if sigma_next == 0.0:
            x = current
            context.report(step, x, current, sigma, sigma_next)
            continue
        lambda_step = log_step(sigma, sigma_next)
        earlier = history[-order:-1][::-1]  # newest first
        ratios = [log_step(sigma, earlier_sigma) / lambda_step for earlier_sigma, _ in earlier]
        differences = [(earlier_x0 - current) / ratio for (_, earlier_x0), ratio in zip(earlier, ratios, strict=True)]
        phi_1, scale, predictor, corrector = unipc_coefficients(lambda_step, ratios, variant)
        base = x * (sigma_next / sigma) - current * phi_1
        x_predicted = base
        for rho, difference in zip(predictor, differences, strict=True):
            x_predicted = x_predicted - difference * (scale * rho)
        if step == step_count - 1:
            x = x_predicted
        else:
            model_next = context.model_x0(x_predicted, sigma_next)
            correction = (model_next - current) * corrector[-1]
            for rho, difference in zip(corrector[:-1], differences, strict=True):
                correction = correction + difference * rho
            x = base - correction * scale
            history.append((sigma_next, model_next))
            del history[:-max_order]
        context.report(step, x, current, sigma, sigma_next)
    return x
