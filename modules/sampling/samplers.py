"""Sampler registry (A1111 1.10 names and aliases) and the :func:`sample` entry point.

Samplers work in k-diffusion sigma space: the model is ``denoise(x, sigma[batch]) -> x0``
and ``x`` starts as ``noise * sigmas[0]``.  A1111 runs DDIM, PLMS and UniPC on
timesteps; here they run on sigmas with the same update rules, their default
schedule reproducing A1111's timestep spacing.

Default schedules under "Automatic" (A1111 1.10): Karras for DPM++ 2M, DPM++ SDE,
DPM++ 2S a, DPM2, DPM2 a and Restart; Exponential for DPM++ 2M SDE (and its Heun
variant) and DPM++ 3M SDE; "DDIM" timestep spacing for DDIM and PLMS; the LCM
distilled 50-step table for LCM; otherwise the model's discrete schedule ("Uniform").
``eta`` defaults to A1111's settings: 1 ("eta_ancestral") for every sampler that
takes it except DDIM, which uses "eta_ddim" = 0.  Note that this makes DPM fast and
DPM adaptive stochastic by default, as in A1111.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from modules.sampling.discrete import DiscreteSchedule
from modules.sampling.samplers_common import Denoiser, NoiseSampler, SamplingContext, StepCallback
from modules.sampling.samplers_dpm_solver import sample_dpm_adaptive, sample_dpm_fast
from modules.sampling.samplers_dpmpp import (
    sample_dpmpp_2m,
    sample_dpmpp_2m_sde,
    sample_dpmpp_2s_ancestral,
    sample_dpmpp_3m_sde,
    sample_dpmpp_sde,
)
from modules.sampling.samplers_multistep import sample_lms, sample_plms
from modules.sampling.samplers_restart import sample_restart
from modules.sampling.samplers_single_step import (
    sample_ddim,
    sample_dpm2,
    sample_dpm2_ancestral,
    sample_euler,
    sample_euler_ancestral,
    sample_heun,
    sample_lcm,
)
from modules.sampling.samplers_unipc import sample_unipc

SamplerFunction = Callable[[SamplingContext, Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class SamplerInfo:
    """A registered sampler.

    ``default_eta`` is None when the sampler has no eta; ``uses_noise`` says whether it
    draws fresh noise with its default settings; ``uses_ensd`` and ``brownian_noise``
    are A1111's flags (eta noise seed delta applies; A1111 feeds it Brownian-tree
    noise); ``second_order`` means about two model calls per step;
    ``discard_penultimate_sigma`` makes :func:`schedules.get_sigmas` drop the
    next-to-last sigma; ``needs_model`` means the default schedule is built from the
    model's discrete timesteps; ``fixed_step_count`` is False for DPM fast/adaptive,
    which plan their own steps; ``options`` are fixed sampler options (see each function).
    """

    name: str
    aliases: tuple[str, ...]
    function: SamplerFunction
    default_schedule: str = "Uniform"
    default_eta: float | None = None
    uses_noise: bool = False
    uses_ensd: bool = False
    brownian_noise: bool = False
    second_order: bool = False
    discard_penultimate_sigma: bool = False
    needs_model: bool = False
    fixed_step_count: bool = True
    options: tuple[tuple[str, Any], ...] = ()


ETA_ANCESTRAL_DEFAULT = 1.0
ETA_DDIM_DEFAULT = 0.0

SAMPLERS: dict[str, SamplerInfo] = {
    info.name: info
    for info in (
        SamplerInfo("DPM++ 2M", ("k_dpmpp_2m", "sample_dpmpp_2m"), sample_dpmpp_2m, default_schedule="Karras"),
        SamplerInfo(
            "DPM++ SDE",
            ("k_dpmpp_sde", "sample_dpmpp_sde"),
            sample_dpmpp_sde,
            default_schedule="Karras",
            default_eta=ETA_ANCESTRAL_DEFAULT,
            uses_noise=True,
            brownian_noise=True,
            second_order=True,
        ),
        SamplerInfo(
            "DPM++ 2M SDE",
            ("k_dpmpp_2m_sde", "sample_dpmpp_2m_sde"),
            sample_dpmpp_2m_sde,
            default_schedule="Exponential",
            default_eta=ETA_ANCESTRAL_DEFAULT,
            uses_noise=True,
            brownian_noise=True,
        ),
        SamplerInfo(
            "DPM++ 2M SDE Heun",
            ("k_dpmpp_2m_sde_heun",),
            sample_dpmpp_2m_sde,
            default_schedule="Exponential",
            default_eta=ETA_ANCESTRAL_DEFAULT,
            uses_noise=True,
            brownian_noise=True,
            options=(("solver_type", "heun"),),
        ),
        SamplerInfo(
            "DPM++ 2S a",
            ("k_dpmpp_2s_a", "sample_dpmpp_2s_ancestral"),
            sample_dpmpp_2s_ancestral,
            default_schedule="Karras",
            default_eta=ETA_ANCESTRAL_DEFAULT,
            uses_noise=True,
            uses_ensd=True,
            second_order=True,
        ),
        SamplerInfo(
            "DPM++ 3M SDE",
            ("k_dpmpp_3m_sde", "sample_dpmpp_3m_sde"),
            sample_dpmpp_3m_sde,
            default_schedule="Exponential",
            default_eta=ETA_ANCESTRAL_DEFAULT,
            uses_noise=True,
            brownian_noise=True,
            discard_penultimate_sigma=True,
        ),
        SamplerInfo(
            "Euler a",
            ("k_euler_a", "k_euler_ancestral", "sample_euler_ancestral"),
            sample_euler_ancestral,
            default_eta=ETA_ANCESTRAL_DEFAULT,
            uses_noise=True,
            uses_ensd=True,
        ),
        SamplerInfo("Euler", ("k_euler", "sample_euler"), sample_euler),
        SamplerInfo("LMS", ("k_lms", "sample_lms"), sample_lms),
        SamplerInfo("Heun", ("k_heun", "sample_heun"), sample_heun, second_order=True),
        SamplerInfo(
            "DPM2",
            ("k_dpm_2", "sample_dpm_2"),
            sample_dpm2,
            default_schedule="Karras",
            second_order=True,
            discard_penultimate_sigma=True,
        ),
        SamplerInfo(
            "DPM2 a",
            ("k_dpm_2_a", "sample_dpm_2_ancestral"),
            sample_dpm2_ancestral,
            default_schedule="Karras",
            default_eta=ETA_ANCESTRAL_DEFAULT,
            uses_noise=True,
            uses_ensd=True,
            second_order=True,
            discard_penultimate_sigma=True,
        ),
        SamplerInfo(
            "DPM fast",
            ("k_dpm_fast", "sample_dpm_fast"),
            sample_dpm_fast,
            default_eta=ETA_ANCESTRAL_DEFAULT,
            uses_noise=True,
            uses_ensd=True,
            fixed_step_count=False,
        ),
        SamplerInfo(
            "DPM adaptive",
            ("k_dpm_ad", "sample_dpm_adaptive"),
            sample_dpm_adaptive,
            default_eta=ETA_ANCESTRAL_DEFAULT,
            uses_noise=True,
            uses_ensd=True,
            fixed_step_count=False,
        ),
        SamplerInfo("Restart", ("restart",), sample_restart, default_schedule="Karras", uses_noise=True, second_order=True),
        SamplerInfo("DDIM", ("ddim",), sample_ddim, default_schedule="DDIM", default_eta=ETA_DDIM_DEFAULT, needs_model=True),
        SamplerInfo("PLMS", ("plms",), sample_plms, default_schedule="DDIM", needs_model=True),
        SamplerInfo("UniPC", ("unipc",), sample_unipc, needs_model=True),
        SamplerInfo("LCM", ("k_lcm", "sample_lcm"), sample_lcm, default_schedule="LCM", uses_noise=True, needs_model=True),
    )
}

_SAMPLER_LOOKUP: dict[str, SamplerInfo] = {key.casefold(): info for info in SAMPLERS.values() for key in (info.name, *info.aliases)}


def find_sampler(name: str) -> SamplerInfo:
    """Sampler by name or alias, case-insensitively.

    Raises ValueError naming the "sampler_name" field and listing the valid names.
    """
    info = _SAMPLER_LOOKUP.get(str(name).strip().casefold()) if name is not None else None
    if info is None:
        raise ValueError(f"sampler_name: unknown sampler {name!r}; valid values are: {', '.join(SAMPLERS)}")
    return info


def sample(
    sampler_name: str,
    denoise: Denoiser,
    x: Tensor,
    sigmas: Tensor,
    *,
    model: DiscreteSchedule | None = None,
    noise_sampler: NoiseSampler | None = None,
    callback: StepCallback | None = None,
    eta: float | None = None,
    s_noise: float = 1.0,
    s_churn: float = 0.0,
    s_tmin: float = 0.0,
    s_tmax: float = math.inf,
    options: Mapping[str, Any] | None = None,
) -> Tensor:
    """Run sampler ``sampler_name`` from ``x`` (already ``noise * sigmas[0]``) along ``sigmas``.

    ``denoise(x, sigma[batch])`` returns the x0 prediction (the caller handles c_in,
    v-prediction and CFG).  ``noise_sampler(sigma, sigma_next)`` supplies fresh unit
    noise for ancestral/SDE steps (default ``torch.randn_like``).  ``callback`` gets
    ``{"i", "x", "denoised", "sigma", "sigma_next"}`` (sigmas as floats) after each
    step; exceptions from ``callback`` or ``denoise`` propagate.  ``eta`` None means
    the sampler's A1111 default; ``s_churn``/``s_tmin``/``s_tmax``/``s_noise`` are
    the Karras churn settings (Euler, Heun, DPM2).  ``options`` are passed to the
    sampler function on top of the registry's fixed options (e.g. UniPC "order" or
    "variant", DPM adaptive "rtol").
    """
    info = find_sampler(sampler_name)
    if sigmas.ndim != 1 or sigmas.numel() < 2:
        raise ValueError("sigmas: expected a 1-D tensor with at least two values")
    merged_options = dict(info.options)
    merged_options.update(options or {})
    context = SamplingContext(
        denoise=denoise,
        noise_sampler=noise_sampler,
        callback=callback,
        eta=float(info.default_eta or 0.0) if eta is None else float(eta),
        s_noise=float(s_noise),
        s_churn=float(s_churn),
        s_tmin=float(s_tmin),
        s_tmax=float(s_tmax),
        model=model,
        options=merged_options,
    )
    return info.function(context, x, sigmas)
