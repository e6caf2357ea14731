"""Sigma schedules ("Schedule type" in A1111 1.10), in k-diffusion sigma space.

Every schedule returns a descending 1-D float32 CPU tensor of ``steps + 1``
noise levels whose last element is 0.  The parametric schedules (Karras,
Exponential, Polyexponential, KL Optimal, Beta) span the model's discrete
``sigma_min .. sigma_max`` (0.0292 .. 14.6146 for SD), like A1111 does.

"Automatic" resolves to the sampler's preferred schedule (see
``SamplerInfo.default_schedule`` in :mod:`modules.sampling.samplers`), which
for most samplers is the model's own discrete schedule ("Uniform").

Deviations from A1111, all forced by the "``steps + 1`` distinct values ending
in 0" rule: "DDIM" always takes exactly ``steps`` timesteps (A1111 takes more
when 1000 is not a multiple of ``steps``), "KL Optimal" ends in 0 rather than at
``sigma_min``, and "Simple"/"DDIM" refuse more steps than there are distinct
timesteps (A1111 would repeat sigmas).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from modules.sampling.discrete import DiscreteSchedule
from modules.sampling.samplers import find_sampler

# Reference "Align Your Steps" sigmas for 10 steps (NVIDIA, 2024), log-linearly resampled for other counts.
ALIGN_YOUR_STEPS_SD1 = (14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.029)
ALIGN_YOUR_STEPS_SDXL = (14.615, 6.315, 3.771, 2.181, 1.342, 0.862, 0.555, 0.380, 0.234, 0.113, 0.029)

# A1111's defaults for the "Beta" schedule (options beta_dist_alpha / beta_dist_beta).
BETA_DISTRIBUTION_ALPHA = 0.6
BETA_DISTRIBUTION_BETA = 0.6

# LCM models are distilled on 50 of the 1000 timesteps: 19, 39, ..., 999.
LCM_ORIGINAL_STEPS = 50


@dataclass(frozen=True)
class ScheduleParameters:
    """Everything a schedule function may use."""

    steps: int
    model: DiscreteSchedule
    sigma_min: float
    sigma_max: float
    rho: float | None
    is_sdxl: bool = False


@dataclass(frozen=True)
class ScheduleInfo:
    """A registered schedule; ``function`` is None only for "Automatic"."""

    name: str
    label: str
    function: Callable[[ScheduleParameters], Tensor] | None
    needs_model: bool = False
    default_rho: float | None = None
    aliases: tuple[str, ...] = ()


def _finish(sigmas: Tensor | list[float] | np.ndarray) -> Tensor:
    """Append the final 0 and normalise dtype/device."""
    if isinstance(sigmas, Tensor):
        sigmas = sigmas.detach().to("cpu", torch.float64).numpy()
    values = torch.from_numpy(np.array(sigmas, dtype=np.float64)).to(torch.float32)
    return torch.cat([values, values.new_zeros(1)])


def uniform_schedule(parameters: ScheduleParameters) -> Tensor:
    """The model's discrete schedule: timesteps ``linspace(t_max, 0, steps)`` mapped to sigmas."""
    model = parameters.model
    timesteps = torch.linspace(model.timestep_count - 1, 0, parameters.steps)
    return _finish(model.t_to_sigma(timesteps))


def karras_schedule(parameters: ScheduleParameters) -> Tensor:
    """Karras et al. (2022): linear in ``sigma ** (1 / rho)`` from sigma_max to sigma_min."""
    rho = 7.0 if parameters.rho is None else parameters.rho
    ramp = np.linspace(0.0, 1.0, parameters.steps)
    high, low = parameters.sigma_max ** (1.0 / rho), parameters.sigma_min ** (1.0 / rho)
    return _finish((high + ramp * (low - high)) ** rho)


def exponential_schedule(parameters: ScheduleParameters) -> Tensor:
    """Geometric spacing: linear in ``log(sigma)``."""
    log_sigmas = np.linspace(math.log(parameters.sigma_max), math.log(parameters.sigma_min), parameters.steps)
    return _finish(np.exp(log_sigmas))


def polyexponential_schedule(parameters: ScheduleParameters) -> Tensor:
    """``log(sigma)`` follows ``ramp ** rho`` between the endpoints (rho=1 is Exponential)."""
    rho = 1.0 if parameters.rho is None else parameters.rho
    ramp = np.linspace(1.0, 0.0, parameters.steps) ** rho
    log_min, log_max = math.log(parameters.sigma_min), math.log(parameters.sigma_max)
    return _finish(np.exp(ramp * (log_max - log_min) + log_min))


def _timestep_range(parameters: ScheduleParameters) -> tuple[float, float]:
    model = parameters.model
    return model.sigma_to_t(parameters.sigma_max), model.sigma_to_t(parameters.sigma_min)


def sgm_uniform_schedule(parameters: ScheduleParameters) -> Tensor:
    """SGM/SDXL style: ``steps + 1`` evenly spaced timesteps, dropping the last one."""
    start, end = _timestep_range(parameters)
    timesteps = torch.linspace(start, end, parameters.steps + 1)[:-1]
    return _finish(parameters.model.t_to_sigma(timesteps))


def normal_schedule(parameters: ScheduleParameters) -> Tensor:
    """``steps`` evenly spaced timesteps between those of sigma_max and sigma_min."""
    start, end = _timestep_range(parameters)
    return _finish(parameters.model.t_to_sigma(torch.linspace(start, end, parameters.steps)))


def _require_distinct_timesteps(steps: int, available: int, label: str) -> None:
    if steps > available:
        raise ValueError(f"steps: the {label} schedule picks distinct timesteps, so at most {available} steps")


def simple_schedule(parameters: ScheduleParameters) -> Tensor:
    """Every ``timestep_count / steps``-th discrete sigma, counted down from the top."""
    model = parameters.model
    _require_distinct_timesteps(parameters.steps, model.timestep_count, "Simple")
    stride = model.timestep_count / parameters.steps
    indices = [model.timestep_count - 1 - int(step * stride) for step in range(parameters.steps)]
    return _finish(model.sigmas[indices])


def ddim_schedule(parameters: ScheduleParameters) -> Tensor:
    """The timesteps of the original DDIM sampler: ``1 + k * (timestep_count // steps)``, descending."""
    model = parameters.model
    _require_distinct_timesteps(parameters.steps, model.timestep_count - 1, "DDIM")
    stride = model.timestep_count // parameters.steps
    indices = [1 + step * stride for step in range(parameters.steps)]
    return _finish(model.sigmas[indices[::-1]])


def kl_optimal_schedule(parameters: ScheduleParameters) -> Tensor:
    """Sabour et al. (2024) "Align Your Steps" KL-optimal: linear in ``arctan(sigma)``."""
    angles = np.linspace(math.atan(parameters.sigma_max), math.atan(parameters.sigma_min), parameters.steps)
    return _finish(np.tan(angles))


def align_your_steps_schedule(parameters: ScheduleParameters) -> Tensor:
    """NVIDIA's optimised 10-step sigmas, log-linearly resampled to ``steps`` values."""
    reference = ALIGN_YOUR_STEPS_SDXL if parameters.is_sdxl else ALIGN_YOUR_STEPS_SD1
    log_ascending = np.log(np.asarray(reference[::-1]))
    positions = np.linspace(0.0, 1.0, parameters.steps)
    resampled = np.exp(np.interp(positions, np.linspace(0.0, 1.0, len(reference)), log_ascending))
    return _finish(resampled[::-1])


def beta_schedule(parameters: ScheduleParameters) -> Tensor:
    """Lee et al. (2024) "Beta Sampling is All You Need": Beta(0.6, 0.6) quantiles spread sigma_max..sigma_min."""
    quantiles = [
        beta_distribution_ppf(probability, BETA_DISTRIBUTION_ALPHA, BETA_DISTRIBUTION_BETA)
        for probability in np.linspace(1.0, 0.0, parameters.steps)
    ]
    span = parameters.sigma_max - parameters.sigma_min
    return _finish([parameters.sigma_min + quantile * span for quantile in quantiles])


def lcm_schedule(parameters: ScheduleParameters) -> Tensor:
    """A1111's LCM default: timesteps ``linspace(999, 19, steps)`` on the 50-step distilled table."""
    model = parameters.model
    skip = model.timestep_count // LCM_ORIGINAL_STEPS
    table_timesteps = np.arange(skip - 1, model.timestep_count, skip)
    table_log_sigmas = model.log_sigmas[table_timesteps].double().numpy()
    timesteps = np.linspace(table_timesteps[-1], table_timesteps[0], parameters.steps)
    return _finish(np.exp(np.interp(timesteps, table_timesteps, table_log_sigmas)))


def regularized_incomplete_beta(x: float, a: float, b: float) -> float:
    """``I_x(a, b)``, the Beta(a, b) CDF, by its continued fraction (modified Lentz)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    if x > (a + 1.0) / (a + b + 2.0):
        # The fraction converges fast only below the mean; use the symmetry I_x(a,b) = 1 - I_{1-x}(b,a).
        return 1.0 - regularized_incomplete_beta(1.0 - x, b, a)
    log_prefactor = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    tiny = 1e-300
    fraction, numerator_term, denominator_term = tiny, tiny, 0.0
    for index in range(1, 400):
        if index == 1:
            coefficient = 1.0
        elif index % 2 == 0:
            m = (index - 2) // 2
            coefficient = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        else:
            m = (index - 1) // 2
            coefficient = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        denominator_term = 1.0 + coefficient * denominator_term
        denominator_term = 1.0 / (denominator_term if abs(denominator_term) > tiny else tiny)
        numerator_term = 1.0 + coefficient / numerator_term
        numerator_term = numerator_term if abs(numerator_term) > tiny else tiny
        delta = numerator_term * denominator_term
        fraction *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return math.exp(log_prefactor) * fraction / a


def beta_distribution_ppf(probability: float, a: float, b: float) -> float:
    """Inverse Beta(a, b) CDF by bisection (the CDF is monotone on [0, 1])."""
    if probability <= 0.0:
        return 0.0
    if probability >= 1.0:
        return 1.0
    low, high = 0.0, 1.0
    for _ in range(64):
        middle = 0.5 * (low + high)
        if regularized_incomplete_beta(middle, a, b) < probability:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


AUTOMATIC = "Automatic"

SCHEDULES: dict[str, ScheduleInfo] = {
    info.label: info
    for info in (
        ScheduleInfo("automatic", AUTOMATIC, None),
        ScheduleInfo("uniform", "Uniform", uniform_schedule, needs_model=True),
        ScheduleInfo("karras", "Karras", karras_schedule, default_rho=7.0),
        ScheduleInfo("exponential", "Exponential", exponential_schedule),
        ScheduleInfo("polyexponential", "Polyexponential", polyexponential_schedule, default_rho=1.0),
        ScheduleInfo("sgm_uniform", "SGM Uniform", sgm_uniform_schedule, needs_model=True, aliases=("SGMUniform",)),
        ScheduleInfo("kl_optimal", "KL Optimal", kl_optimal_schedule),
        ScheduleInfo("align_your_steps", "Align Your Steps", align_your_steps_schedule),
        ScheduleInfo("simple", "Simple", simple_schedule, needs_model=True),
        ScheduleInfo("normal", "Normal", normal_schedule, needs_model=True),
        ScheduleInfo("ddim", "DDIM", ddim_schedule, needs_model=True),
        ScheduleInfo("beta", "Beta", beta_schedule, needs_model=True),
    )
}

# Defaults some samplers use under "Automatic" but that users cannot pick by name.
INTERNAL_SCHEDULES: dict[str, ScheduleInfo] = {
    "LCM": ScheduleInfo("lcm", "LCM", lcm_schedule, needs_model=True),
}


def _lookup_table(schedules: dict[str, ScheduleInfo]) -> dict[str, ScheduleInfo]:
    table: dict[str, ScheduleInfo] = {}
    for info in schedules.values():
        for key in (info.label, info.name, *info.aliases):
            table[key.casefold()] = info
    return table


_SCHEDULE_LOOKUP = _lookup_table(SCHEDULES)
_INTERNAL_LOOKUP = _lookup_table(INTERNAL_SCHEDULES)


def find_schedule(name: str | None) -> ScheduleInfo:
    """Schedule by label, internal name or alias (case-insensitive); None or "" means Automatic.

    Raises ValueError naming the "scheduler" field and listing the valid labels.
    """
    if name is None or not str(name).strip():
        return SCHEDULES[AUTOMATIC]
    info = _SCHEDULE_LOOKUP.get(str(name).strip().casefold())
    if info is None:
        valid = ", ".join(SCHEDULES)
        raise ValueError(f"scheduler: unknown schedule {name!r}; valid values are: {valid}")
    return info


def resolve_schedule(schedule_name: str | None, sampler_name: str | None = None) -> ScheduleInfo:
    """The schedule actually used: "Automatic" becomes the sampler's default (else "Uniform")."""
    info = find_schedule(schedule_name)
    if info.function is not None:
        return info
    default = find_sampler(sampler_name).default_schedule if sampler_name else "Uniform"
    return _SCHEDULE_LOOKUP.get(default.casefold()) or _INTERNAL_LOOKUP[default.casefold()]


def get_sigmas(
    schedule_name: str | None,
    steps: int,
    model: DiscreteSchedule,
    sampler_name: str | None = None,
    *,
    sigma_min: float | None = None,
    sigma_max: float | None = None,
    rho: float | None = None,
    is_sdxl: bool = False,
    discard_penultimate_sigma: bool | None = None,
) -> Tensor:
    """Noise levels for ``steps`` sampling steps: descending float32, length ``steps + 1``, last 0.

    ``sigma_min``/``sigma_max``/``rho`` override the model's range and the schedule's
    rho (A1111's "sigma min/max" and "rho" settings; None keeps the defaults).
    ``is_sdxl`` picks the SDXL table of "Align Your Steps".  Samplers that discard the
    penultimate sigma (DPM2, DPM2 a, DPM++ 3M SDE) get a schedule for one more step
    with that sigma removed, as A1111 does; ``discard_penultimate_sigma`` overrides
    the sampler's flag (A1111's "always discard next-to-last sigma" option).
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps: must be a positive integer, got {steps!r}")
    info = resolve_schedule(schedule_name, sampler_name)
    discard = discard_penultimate_sigma
    if discard is None:
        discard = find_sampler(sampler_name).discard_penultimate_sigma if sampler_name else False
    parameters = ScheduleParameters(
        steps=steps + 1 if discard else steps,
        model=model,
        sigma_min=model.sigma_min if sigma_min is None else float(sigma_min),
        sigma_max=model.sigma_max if sigma_max is None else float(sigma_max),
        rho=info.default_rho if rho is None else float(rho),
        is_sdxl=is_sdxl,
    )
    if not 0.0 < parameters.sigma_min < parameters.sigma_max:
        raise ValueError("sigma_min: must be positive and below sigma_max")
    sigmas = info.function(parameters)
    if discard:
        sigmas = torch.cat([sigmas[:-2], sigmas[-1:]])
    if sigmas.shape != (steps + 1,):
        raise RuntimeError(f"schedule {info.label} returned {tuple(sigmas.shape)} values for {steps} steps")
    return sigmas


def split_sampler_and_schedule(name: str) -> tuple[str, str | None]:
    """Split a pre-1.9 combined name such as "DPM++ 2M Karras" into ("DPM++ 2M", "Karras").

    Returns ``(name, None)`` when the name carries no schedule suffix.  The sampler
    part is not validated here.
    """
    stripped = name.strip()
    for info in SCHEDULES.values():
        if info.function is None:
            continue
        for suffix in (info.label, *info.aliases):
            if stripped.casefold().endswith(" " + suffix.casefold()):
                return stripped[: -len(suffix) - 1].rstrip(), info.label
    return stripped, None
