"""DPM-Solver with the noise prediction (Lu et al. 2022, "DPM-Solver: A Fast ODE Solver for
Diffusion Probabilistic Model Sampling in Around 10 Steps"): "DPM fast" and "DPM adaptive".

Time is ``t = lambda = -log(sigma)``; in k-diffusion scaling the first-order step is
``x_t = x_s - sigma_t * expm1(h) * eps_s``.  Both samplers ignore the shape of the given
schedule and only use its range: they integrate from ``sigmas[0]`` down to the smallest
positive sigma (A1111 passes the model's sigma_min/sigma_max for txt2img and the
schedule's ends for img2img, which is the same thing) and return the sample at that
sigma, without a final denoise, like A1111.  With ``eta`` > 0 (A1111's default is 1)
each step lands on ``sigma_down`` and adds ``sigma_up`` fresh noise.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from modules.sampling.samplers_common import SamplingContext, ancestral_split, sigma_list

# SD's discrete sigma_min, used only when a one-step schedule leaves no positive end point and no model was given.
FALLBACK_SIGMA_MIN = 0.0291675


class NoisePredictionSolver:
    """DPM-Solver-1/2/3 single steps on ``eps(x, t)``, caching model calls within one step."""

    def __init__(self, context: SamplingContext) -> None:
        self.context = context
        self.cache: dict[float, Tensor] = {}

    def eps(self, x: Tensor, time: float) -> Tensor:
        """Predicted noise at ``time``; results for the step in progress are cached by time."""
        if time not in self.cache:
            sigma = math.exp(-time)
            self.cache[time] = (x - self.context.model_x0(x, sigma)) / sigma
        return self.cache[time]

    def start_step(self) -> None:
        """Forget the cached predictions of the previous step."""
        self.cache = {}

    @staticmethod
    def sigma(time: float) -> float:
        return math.exp(-time)

    def first_order(self, x: Tensor, time: float, time_next: float) -> Tensor:
        """DPM-Solver-1 (equivalent to DDIM / Euler in sigma)."""
        step = time_next - time
        return x - self.eps(x, time) * (self.sigma(time_next) * math.expm1(step))

    def second_order(self, x: Tensor, time: float, time_next: float, fraction: float = 0.5) -> Tensor:
        """DPM-Solver-2 with the intermediate point at ``fraction`` of the step (paper Algorithm 4)."""
        step = time_next - time
        eps = self.eps(x, time)
        time_1 = time + fraction * step
        x_1 = x - eps * (self.sigma(time_1) * math.expm1(fraction * step))
        eps_1 = self.eps(x_1, time_1)
        scale = self.sigma(time_next) * math.expm1(step)
        return x - eps * scale - (eps_1 - eps) * (scale / (2.0 * fraction))

    def third_order(self, x: Tensor, time: float, time_next: float) -> Tensor:
        """DPM-Solver-3 with r1 = 1/3, r2 = 2/3 (paper Algorithm 5)."""
        fraction_1, fraction_2 = 1.0 / 3.0, 2.0 / 3.0
        step = time_next - time
        eps = self.eps(x, time)
        time_1, time_2 = time + fraction_1 * step, time + fraction_2 * step
        x_1 = x - eps * (self.sigma(time_1) * math.expm1(fraction_1 * step))
        eps_1 = self.eps(x_1, time_1)
        phi_2 = math.expm1(fraction_2 * step) / (fraction_2 * step) - 1.0
        x_2 = (
            x
            - eps * (self.sigma(time_2) * math.expm1(fraction_2 * step))
            - (eps_1 - eps) * (self.sigma(time_2) * (fraction_2 / fraction_1) * phi_2)
        )
        eps_2 = self.eps(x_2, time_2)
        phi_final = math.expm1(step) / step - 1.0
        scale = self.sigma(time_next)
        return x - eps * (scale * math.expm1(step)) - (eps_2 - eps) * (scale / fraction_2 * phi_final)

    def step(self, x: Tensor, time: float, time_next: float, order: int) -> Tensor:
        if order == 1:
            return self.first_order(x, time, time_next)
        if order == 2:
            return self.second_order(x, time, time_next)
        return self.third_order(x, time, time_next)

    def ancestral_target(self, time: float, time_next: float, time_end: float) -> tuple[float, float]:
        """Deterministic target time and fresh-noise scale for ``eta`` > 0 (no noise when eta is 0)."""
        if self.context.eta <= 0.0:
            return time_next, 0.0
        sigma_down, _ = ancestral_split(self.sigma(time), self.sigma(time_next), self.context.eta)
        target = min(time_end, -math.log(sigma_down)) if sigma_down > 0.0 else time_end
        noise_scale = math.sqrt(max(self.sigma(time_next) ** 2 - self.sigma(target) ** 2, 0.0))
        return target, noise_scale


def solver_range(context: SamplingContext, levels: list[float]) -> tuple[float, float]:
    """``(sigma_max, sigma_min)`` to integrate between: the schedule's first and smallest positive sigma."""
    positive = [level for level in levels[1:] if level > 0.0]
    if positive:
        return levels[0], min(positive)
    return levels[0], context.model.sigma_min if context.model is not None else FALLBACK_SIGMA_MIN


def fast_step_orders(evaluations: int) -> list[int]:
    """DPM-Solver-fast's plan for a budget of model calls: third order steps, then 2/1 (paper Sec. 3.4)."""
    steps = evaluations // 3 + 1
    if evaluations % 3 == 0:
        return [3] * (steps - 2) + [2, 1]
    return [3] * (steps - 1) + [evaluations % 3]


def sample_dpm_fast(context: SamplingContext, x: Tensor, sigmas: Tensor) -> Tensor:
    """DPM fast: DPM-Solver-fast with exactly ``len(sigmas) - 1`` model calls on steps uniform in lambda."""
    levels = sigma_list(sigmas)
    sigma_max, sigma_min = solver_range(context, levels)
    if sigma_max <= sigma_min:
        return x
    orders = [order for order in fast_step_orders(len(levels) - 1) if order > 0]
    time_start, time_end = -math.log(sigma_max), -math.log(sigma_min)
    times = torch.linspace(time_start, time_end, len(orders) + 1, dtype=torch.float64).tolist()
    solver = NoisePredictionSolver(context)
    for index, order in enumerate(orders):
        time, time_next = times[index], times[index + 1]
        solver.start_step()
        target, noise_scale = solver.ancestral_target(time, time_next, time_end)
        denoised = x - solver.eps(x, time) * solver.sigma(time)
        x = solver.step(x, time, target, order)
        if noise_scale > 0.0:
            noise = context.noise(x, solver.sigma(time), solver.sigma(time_next))
            x = x + noise * context.s_noise * noise_scale
        context.report(index, x, denoised, solver.sigma(time), solver.sigma(time_next))
    return x


class StepSizeController:
    """PID step-size control (Söderlind 2003, "Digital filters in adaptive time-stepping").

    ``errors`` holds inverse error ratios ``1 / (error + eps)``, newest first; the step
    is rescaled by a soft-limited ``1 + atan(factor - 1)`` and accepted when that
    factor reaches ``accept_safety``.
    """

    def __init__(
        self,
        step: float,
        proportional: float,
        integral: float,
        derivative: float,
        order: float,
        accept_safety: float,
        epsilon: float = 1e-8,
    ) -> None:
        self.step = step
        self.exponents = (
            (proportional + integral + derivative) / order,
            -(proportional + 2.0 * derivative) / order,
            derivative / order,
        )
        self.accept_safety = accept_safety
        self.epsilon = epsilon
        self.errors: list[float] = []

    def propose(self, error: float) -> bool:
        """Update the step size from the latest error norm; return whether to accept the step."""
        inverse_error = 1.0 / (error + self.epsilon)
        if not self.errors:
            self.errors = [inverse_error] * 3
        self.errors[0] = inverse_error
        factor = 1.0
        for value, exponent in zip(self.errors, self.exponents, strict=True):
            factor *= value**exponent
        factor = 1.0 + math.atan(factor - 1.0)
        accepted = factor >= self.accept_safety
        if accepted:
            self.errors = [self.errors[0], self.errors[0], self.errors[1]]
        self.step *= factor
        return accepted


def sample_dpm_adaptive(context: SamplingContext, x: Tensor, sigmas: Tensor) -> Tensor:
    """DPM adaptive: embedded DPM-Solver-2/3 pair with PID step-size control (paper Sec. 3.3/Alg. 6).

    Options: ``order`` (2 or 3, default 3), ``rtol`` 0.05, ``atol`` 0.0078, ``h_init`` 0.05,
    ``pcoeff`` 0, ``icoeff`` 1, ``dcoeff`` 0, ``accept_safety`` 0.81.  Every attempt costs
    ``order`` model calls; the callback runs on accepted steps only.
    """
    options = context.options
    order = int(options.get("order", 3))
    if order not in (2, 3):
        raise ValueError("DPM adaptive order must be 2 or 3")
    rtol, atol = float(options.get("rtol", 0.05)), float(options.get("atol", 0.0078))
    levels = sigma_list(sigmas)
    sigma_max, sigma_min = solver_range(context, levels)
    if sigma_max <= sigma_min:
        return x
    time, time_end = -math.log(sigma_max), -math.log(sigma_min)
    controller = StepSizeController(
        abs(float(options.get("h_init", 0.05))),
        float(options.get("pcoeff", 0.0)),
        float(options.get("icoeff", 1.0)),
        float(options.get("dcoeff", 0.0)),
        1.5 if context.eta > 0.0 else float(order),
        float(options.get("accept_safety", 0.81)),
    )
    max_attempts = int(options.get("max_attempts", 10000))
    solver = NoisePredictionSolver(context)
    x_previous_low = x
    accepted_steps = 0
    for _ in range(max_attempts):
        if time >= time_end - 1e-5:
            break
        time_next = min(time_end, time + controller.step)
        solver.start_step()
        target, noise_scale = solver.ancestral_target(time, time_next, time_end)
        denoised = x - solver.eps(x, time) * solver.sigma(time)
        if order == 2:
            x_low = solver.first_order(x, time, target)
            x_high = solver.second_order(x, time, target)
        else:
            x_low = solver.second_order(x, time, target, fraction=1.0 / 3.0)
            x_high = solver.third_order(x, time, target)
        tolerance = torch.clamp(rtol * torch.maximum(x_low.abs(), x_previous_low.abs()), min=atol)
        error = float(torch.linalg.vector_norm((x_low - x_high) / tolerance)) / math.sqrt(x.numel())
        if controller.propose(error):
            x_previous_low = x_low
            x = x_high
            if noise_scale > 0.0:
                x = x + context.noise(x, solver.sigma(time), solver.sigma(time_next)) * context.s_noise * noise_scale
            context.report(accepted_steps, x, denoised, solver.sigma(time), solver.sigma(time_next))
            accepted_steps += 1
            time = time_next
    return x
