"""Samplers and sigma schedules against a toy problem with a known answer.

The data distribution is N(MEAN, STD**2) per element, whose exact denoiser is
``D(x, sigma) = (STD**2 * x + sigma**2 * MEAN) / (STD**2 + sigma**2)``.  The
probability-flow ODE then keeps ``(x - MEAN) / sqrt(STD**2 + sigma**2)`` constant,
so a deterministic sampler started at ``x_T`` must end near
``MEAN + (x_T - MEAN) * STD / sqrt(STD**2 + sigma_max**2)``.
"""

from __future__ import annotations

import math

import pytest
import torch

from modules.sampling.discrete import DiscreteSchedule, scaled_linear_alphas_cumprod
from modules.sampling.samplers import SAMPLERS, find_sampler, sample
from modules.sampling.samplers_dpm_solver import fast_step_orders
from modules.sampling.samplers_multistep import linear_multistep_coefficients
from modules.sampling.samplers_restart import restart_plan
from modules.sampling.schedules import (
    SCHEDULES,
    beta_distribution_ppf,
    get_sigmas,
    regularized_incomplete_beta,
    split_sampler_and_schedule,
)

MEAN, STD = 0.5, 0.8
MODEL = DiscreteSchedule.scaled_linear()
ALL_SAMPLERS = list(SAMPLERS)
ALL_SCHEDULES = list(SCHEDULES)


def gaussian_denoiser(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Exact x0 prediction (posterior mean) for N(MEAN, STD**2) data."""
    variance = sigma.to(x.dtype).reshape(-1, *([1] * (x.ndim - 1))) ** 2
    return (STD**2 * x + variance * MEAN) / (STD**2 + variance)


def ode_solution(x_start: torch.Tensor, sigma_start: float, sigma_end: float = 0.0) -> torch.Tensor:
    """Exact probability-flow ODE solution from ``sigma_start`` to ``sigma_end``."""
    scale = math.sqrt(STD**2 + sigma_end**2) / math.sqrt(STD**2 + sigma_start**2)
    return MEAN + (x_start - MEAN) * scale


def start_noise(shape: tuple[int, ...], seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def seeded_noise_sampler(like: torch.Tensor, seed: int):
    generator = torch.Generator().manual_seed(seed)
    return lambda sigma, sigma_next: torch.randn(like.shape, generator=generator, dtype=like.dtype)


def ode_error(sampler_name: str, steps: int, schedule: str = "Karras", **kwargs) -> float:
    sigmas = get_sigmas(schedule, steps, MODEL).double()
    x_start = start_noise((2, 4, 8, 8)) * sigmas[0]
    result = sample(sampler_name, gaussian_denoiser, x_start, sigmas, model=MODEL, **kwargs)
    # DPM fast/adaptive stop at the smallest positive sigma, as in A1111.
    end = float(sigmas[-2]) if sampler_name in ("DPM fast", "DPM adaptive") else 0.0
    return float((result - ode_solution(x_start, float(sigmas[0]), end)).abs().max())


# ---------------------------------------------------------------- discrete schedule


def test_discrete_schedule_matches_stable_diffusion_values():
    assert MODEL.timestep_count == 1000
    assert MODEL.sigma_min == pytest.approx(0.0292, abs=1e-4)
    assert MODEL.sigma_max == pytest.approx(14.6146, abs=1e-3)
    alphas = scaled_linear_alphas_cumprod()
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
    assert alphas[10].item() == pytest.approx(float(torch.prod(1 - betas[:11])), rel=1e-6)
    assert torch.allclose(MODEL.sigmas, ((1 - alphas) / alphas) ** 0.5)
    assert bool((MODEL.sigmas[1:] > MODEL.sigmas[:-1]).all())


def test_sigma_timestep_round_trip_and_log_interpolation():
    assert MODEL.t_to_sigma(0.0) == pytest.approx(MODEL.sigma_min, rel=1e-6)
    assert MODEL.t_to_sigma(999.0) == pytest.approx(MODEL.sigma_max, rel=1e-6)
    assert MODEL.t_to_sigma(500.0) == pytest.approx(float(MODEL.sigmas[500]), rel=1e-6)
    midpoint = math.sqrt(float(MODEL.sigmas[10]) * float(MODEL.sigmas[11]))
    assert MODEL.t_to_sigma(10.5) == pytest.approx(midpoint, rel=1e-5)
    timesteps = torch.tensor([0.0, 3.25, 411.5, 998.9, 999.0])
    assert torch.allclose(MODEL.sigma_to_t(MODEL.t_to_sigma(timesteps)), timesteps, atol=2e-3)
    assert MODEL.sigma_to_t(1e-6) == 0.0 and MODEL.sigma_to_t(1e6) == 999.0
    assert isinstance(MODEL.sigma_to_t(1.0), float)


# ---------------------------------------------------------------- schedules


@pytest.mark.parametrize("schedule", ALL_SCHEDULES)
@pytest.mark.parametrize("steps", [1, 2, 10, 37])
def test_every_schedule_is_descending_and_ends_in_zero(schedule, steps):
    sigmas = get_sigmas(schedule, steps, MODEL)
    assert sigmas.dtype == torch.float32 and sigmas.shape == (steps + 1,)
    assert sigmas[-1].item() == 0.0
    assert bool((sigmas[1:] < sigmas[:-1]).all()), sigmas
    assert sigmas[0].item() <= MODEL.sigma_max * 1.001
    assert sigmas[-2].item() > 0.0


def test_karras_exponential_and_polyexponential_follow_their_formulas():
    karras = get_sigmas("Karras", 10, MODEL).double()
    assert karras[0].item() == pytest.approx(14.6146, abs=1e-3)
    assert karras[-2].item() == pytest.approx(0.0292, abs=1e-4)
    roots = karras[:-1] ** (1 / 7)
    assert torch.allclose(roots[1:] - roots[:-1], (roots[1] - roots[0]).expand(9), atol=1e-5)
    exponential = get_sigmas("Exponential", 10, MODEL).double()
    ratios = exponential[1:-1] / exponential[:-2]
    assert torch.allclose(ratios, ratios[0].expand(9), rtol=1e-5)
    assert torch.allclose(get_sigmas("Polyexponential", 10, MODEL), get_sigmas("Exponential", 10, MODEL), rtol=1e-5)
    # rho > 1 spends more steps at low noise; Karras with rho=1 is linear in sigma.
    assert get_sigmas("Polyexponential", 10, MODEL, rho=2.0)[5] < exponential[5]
    assert get_sigmas("Karras", 10, MODEL, rho=1.0)[5] > karras[5]


def test_model_based_schedules_use_discrete_timesteps():
    uniform = get_sigmas("Uniform", 10, MODEL)
    assert torch.allclose(uniform[:-1], MODEL.t_to_sigma(torch.linspace(999, 0, 10)))
    assert torch.allclose(get_sigmas("Normal", 10, MODEL), uniform)
    sgm = get_sigmas("SGM Uniform", 10, MODEL)
    assert torch.allclose(sgm[:-1], MODEL.t_to_sigma(torch.linspace(999, 0, 11)[:-1]))
    ddim = get_sigmas("DDIM", 10, MODEL)
    assert torch.equal(ddim[:-1], MODEL.sigmas[[901, 801, 701, 601, 501, 401, 301, 201, 101, 1]])
    simple = get_sigmas("Simple", 4, MODEL)
    assert torch.equal(simple[:-1], MODEL.sigmas[[999, 749, 499, 249]])


def test_beta_schedule_uses_beta_quantiles_between_model_extremes():
    sigmas = get_sigmas("Beta", 5, MODEL).double()
    assert sigmas[0].item() == pytest.approx(MODEL.sigma_max, rel=1e-5)
    assert sigmas[-2].item() == pytest.approx(MODEL.sigma_min, rel=1e-4)
    # Beta(0.6, 0.6) is symmetric: its median is 0.5, so the middle sigma is the midpoint.
    assert sigmas[2].item() == pytest.approx((MODEL.sigma_min + MODEL.sigma_max) / 2, rel=1e-5)
    assert sigmas[1].item() + sigmas[3].item() == pytest.approx(MODEL.sigma_min + MODEL.sigma_max, rel=1e-5)


@pytest.mark.parametrize("x", [0.05, 0.3, 0.5, 0.77, 0.99])
def test_regularized_incomplete_beta_matches_closed_forms(x):
    assert regularized_incomplete_beta(x, 1.0, 1.0) == pytest.approx(x, abs=1e-12)
    # Integer parameters: I_x(2, 3) = P(Binomial(4, x) >= 2).
    binomial_tail = sum(math.comb(4, j) * x**j * (1 - x) ** (4 - j) for j in range(2, 5))
    assert regularized_incomplete_beta(x, 2.0, 3.0) == pytest.approx(binomial_tail, abs=1e-12)
    assert regularized_incomplete_beta(x, 0.5, 0.5) == pytest.approx(2 / math.pi * math.asin(math.sqrt(x)), abs=1e-12)
    assert beta_distribution_ppf(2 / math.pi * math.asin(math.sqrt(x)), 0.5, 0.5) == pytest.approx(x, abs=1e-12)


def test_automatic_uses_the_samplers_a1111_default_schedule():
    for sampler_name, schedule in [("DPM++ 2M", "Karras"), ("DPM++ 2M SDE", "Exponential"), ("Euler a", "Uniform"), ("DDIM", "DDIM")]:
        assert torch.equal(get_sigmas("Automatic", 12, MODEL, sampler_name), get_sigmas(schedule, 12, MODEL)), sampler_name
    assert torch.equal(get_sigmas(None, 12, MODEL), get_sigmas("Uniform", 12, MODEL))
    lcm = get_sigmas("Automatic", 4, MODEL, "LCM")
    assert lcm[0].item() == pytest.approx(MODEL.sigma_max, rel=1e-5)
    assert lcm[-2].item() == pytest.approx(float(MODEL.sigmas[19]), rel=1e-5)


def test_discarding_the_penultimate_sigma_for_dpm2_and_3m_sde():
    for sampler_name in ("DPM2", "DPM2 a", "DPM++ 3M SDE"):
        sigmas = get_sigmas("Karras", 10, MODEL, sampler_name)
        longer = get_sigmas("Karras", 11, MODEL)
        assert sigmas.shape == (11,)
        assert torch.equal(sigmas, torch.cat([longer[:-2], longer[-1:]]))
    assert torch.equal(get_sigmas("Karras", 10, MODEL, "Euler"), get_sigmas("Karras", 10, MODEL))


def test_schedule_names_are_case_insensitive_and_accept_internal_names():
    reference = get_sigmas("SGM Uniform", 8, MODEL)
    for name in ("sgm_uniform", "SGMUniform", "sgm uniform"):
        assert torch.equal(get_sigmas(name, 8, MODEL), reference)


def test_unknown_schedule_and_bad_steps_raise_value_errors_naming_the_field():
    with pytest.raises(ValueError, match="scheduler") as error:
        get_sigmas("Karrass", 10, MODEL)
    assert "Karras" in str(error.value) and "SGM Uniform" in str(error.value)
    with pytest.raises(ValueError, match="steps"):
        get_sigmas("Karras", 0, MODEL)
    with pytest.raises(ValueError, match="sampler_name"):
        get_sigmas("Automatic", 10, MODEL, "Euler b")
    with pytest.raises(ValueError, match="steps"):
        get_sigmas("DDIM", 1000, MODEL)
    ddim = get_sigmas("DDIM", 999, MODEL)
    assert bool((ddim[1:] < ddim[:-1]).all()) and ddim[0].item() == MODEL.sigma_max


def test_split_legacy_sampler_names():
    assert split_sampler_and_schedule("DPM++ 2M Karras") == ("DPM++ 2M", "Karras")
    assert split_sampler_and_schedule("DPM++ 2M SDE Exponential") == ("DPM++ 2M SDE", "Exponential")
    assert split_sampler_and_schedule("Euler a") == ("Euler a", None)


# ---------------------------------------------------------------- registry


def test_registry_has_a1111_names_and_aliases():
    expected = {"Euler", "Euler a", "LMS", "Heun", "DPM2", "DPM2 a", "DPM++ 2S a", "DPM++ 2M", "DPM++ SDE", "DPM++ 2M SDE"}
    expected |= {"DPM++ 3M SDE", "DPM fast", "DPM adaptive", "LCM", "DDIM", "PLMS", "UniPC", "Restart"}
    assert expected <= set(SAMPLERS)
    for alias in ("k_euler_a", "K_EULER_ANCESTRAL", "sample_euler_ancestral", " euler A "):
        assert find_sampler(alias).name == "Euler a"
    assert find_sampler("k_dpmpp_2m").name == "DPM++ 2M"
    assert find_sampler("k_dpm_ad").name == "DPM adaptive"


def test_unknown_sampler_raises_value_error_listing_valid_names():
    with pytest.raises(ValueError, match="sampler_name") as error:
        find_sampler("Euler b")
    assert all(name in str(error.value) for name in SAMPLERS)
    with pytest.raises(ValueError, match="sampler_name"):
        sample("nope", gaussian_denoiser, torch.zeros(1, 1), torch.tensor([1.0, 0.0]))


# ---------------------------------------------------------------- every sampler runs


@pytest.mark.parametrize("sampler_name", ALL_SAMPLERS)
def test_every_sampler_runs_with_every_schedule(sampler_name):
    for schedule in ALL_SCHEDULES:
        for steps in (2, 10):
            sigmas = get_sigmas(schedule, steps, MODEL, sampler_name)
            x = start_noise((2, 4, 8, 8), dtype=torch.float32) * sigmas[0]
            result = sample(sampler_name, gaussian_denoiser, x, sigmas, model=MODEL)
            assert result.shape == x.shape and result.dtype == torch.float32
            assert bool(torch.isfinite(result).all()), (schedule, steps)
            assert abs(result.mean().item() - MEAN) < 0.5, (schedule, steps)


# ---------------------------------------------------------------- accuracy


DETERMINISTIC = ["Euler", "Heun", "LMS", "DPM2", "DPM++ 2M", "DDIM", "PLMS", "UniPC", "DPM fast", "DPM adaptive"]
HIGHER_ORDER = [name for name in DETERMINISTIC if name not in ("Euler", "DDIM")]


@pytest.mark.parametrize("sampler_name", DETERMINISTIC + ["DPM++ 2S a", "DPM++ SDE", "DPM++ 2M SDE", "DPM++ 3M SDE", "DPM2 a"])
def test_deterministic_sampling_approaches_the_exact_ode_solution(sampler_name):
    error = ode_error(sampler_name, 20, eta=0.0)
    assert error < (0.3 if sampler_name in ("Euler", "DDIM") else 0.13), error


def test_higher_order_samplers_beat_euler_at_equal_steps():
    euler = ode_error("Euler", 10)
    assert ode_error("DDIM", 10, eta=0.0) == pytest.approx(euler, rel=1e-9)
    for sampler_name in HIGHER_ORDER:
        assert ode_error(sampler_name, 10, eta=0.0) < 0.45 * euler, sampler_name


@pytest.mark.parametrize(
    ("sampler_name", "minimum_ratio"),
    [("Euler", 1.7), ("Heun", 3.5), ("DPM2", 3.5), ("LMS", 3.5), ("DPM++ 2M", 3.5), ("PLMS", 3.5), ("DPM++ 2S a", 3.0)],
)
def test_error_shrinks_at_the_expected_order(sampler_name, minimum_ratio):
    # Halving the step size divides the error by about 2**order.
    assert ode_error(sampler_name, 10, eta=0.0) / ode_error(sampler_name, 20, eta=0.0) > minimum_ratio


@pytest.mark.parametrize("variant", ["bh1", "bh2"])
def test_unipc_variants_and_orders_are_accurate(variant):
    errors = [ode_error("UniPC", 20, "Exponential", options={"variant": variant, "order": order}) for order in (1, 2, 3)]
    assert errors[2] < errors[1] < errors[0]
    assert errors[2] < 0.03


def test_lms_coefficients_reduce_to_adams_bashforth_on_an_even_grid():
    step = 0.1
    for start, direction in ((1.0, 1.0), (5.0, -1.0)):
        nodes = [start - direction * step * back for back in range(4)]
        weights = linear_multistep_coefficients(nodes, start, start + direction * step)
        expected = [direction * step * value / 24 for value in (55, -59, 37, -9)]
        assert weights == pytest.approx(expected, abs=1e-12)
    assert linear_multistep_coefficients([2.0], 2.0, 1.5) == pytest.approx([-0.5])


def test_dpm_fast_step_plan_spends_exactly_the_budget():
    assert fast_step_orders(10) == [3, 3, 3, 1]
    assert fast_step_orders(9) == [3, 3, 2, 1]
    assert fast_step_orders(2) == [2]
    assert all(sum(fast_step_orders(budget)) == budget for budget in range(1, 60))


# ---------------------------------------------------------------- stochastic samplers


STOCHASTIC = ["Euler a", "DPM2 a", "DPM++ 2S a", "DPM++ SDE", "DPM++ 2M SDE", "DPM++ 3M SDE", "DPM fast", "DPM adaptive", "Restart"]


@pytest.mark.parametrize("sampler_name", STOCHASTIC)
def test_stochastic_samplers_reproduce_the_data_distribution(sampler_name):
    # First-order stochastic samplers underestimate the spread at low step counts; 100 steps is close.
    sigmas = get_sigmas("Automatic", 100, MODEL, sampler_name)
    x = start_noise((1, 4, 64, 64), seed=1, dtype=torch.float32) * sigmas[0]
    calls = []

    def counting_noise(sigma, sigma_next):
        calls.append((float(sigma), float(sigma_next)))
        return torch.randn(x.shape, generator=generator)

    generator = torch.Generator().manual_seed(2)
    result = sample(sampler_name, gaussian_denoiser, x, sigmas, model=MODEL, noise_sampler=counting_noise)
    assert calls, "default eta must inject noise"
    assert result.mean().item() == pytest.approx(MEAN, abs=0.03)
    assert result.std().item() == pytest.approx(STD, rel=0.06)


def test_ddim_eta_and_lcm_noise():
    sigmas = get_sigmas("Automatic", 100, MODEL, "DDIM")
    x = start_noise((1, 4, 64, 64), seed=3, dtype=torch.float32) * sigmas[0]
    result = sample("DDIM", gaussian_denoiser, x, sigmas, eta=1.0, noise_sampler=seeded_noise_sampler(x, 4))
    assert result.std().item() == pytest.approx(STD, rel=0.06)
    deterministic = sample("DDIM", gaussian_denoiser, x, sigmas)
    assert torch.allclose(deterministic, sample("Euler", gaussian_denoiser, x, sigmas), atol=1e-5)
    # LCM: the result is the last clean prediction, re-noised in between with fresh noise.
    lcm_sigmas = get_sigmas("Automatic", 4, MODEL, "LCM")
    seen = []
    lcm = sample("LCM", gaussian_denoiser, x, lcm_sigmas, callback=lambda info: seen.append(info))
    assert torch.equal(lcm, seen[-1]["denoised"])
    assert (seen[0]["x"] - seen[0]["denoised"]).std().item() == pytest.approx(float(lcm_sigmas[1]), rel=0.05)


def test_same_noise_sampler_seed_gives_identical_results():
    sigmas = get_sigmas("Automatic", 8, MODEL, "DPM++ SDE")
    x = start_noise((1, 4, 8, 8), dtype=torch.float32) * sigmas[0]
    first = sample("DPM++ SDE", gaussian_denoiser, x, sigmas, noise_sampler=seeded_noise_sampler(x, 5))
    second = sample("DPM++ SDE", gaussian_denoiser, x, sigmas, noise_sampler=seeded_noise_sampler(x, 5))
    third = sample("DPM++ SDE", gaussian_denoiser, x, sigmas, noise_sampler=seeded_noise_sampler(x, 6))
    assert torch.equal(first, second) and not torch.equal(first, third)


def test_restart_plan_keeps_the_step_count_and_jumps_back_up():
    short = get_sigmas("Karras", 12, MODEL).tolist()
    assert restart_plan(short) == list(zip(short[:-1], short[1:], strict=True))
    for steps, restarts in ((25, 1), (40, 2)):
        plan = restart_plan(get_sigmas("Karras", steps, MODEL).tolist())
        assert len(plan) == steps
        jumps = [index for index in range(1, len(plan)) if plan[index][0] > plan[index - 1][1]]
        assert len(jumps) == restarts
        assert plan[jumps[0]][0] == pytest.approx(2.0, rel=0.35) and plan[jumps[0] - 1][1] == pytest.approx(0.1, rel=0.5)


# ---------------------------------------------------------------- callbacks and model calls


EXPECTED_CALLS = {"Heun": 2 * 6 - 1, "DPM2": 2 * 6 - 1, "DPM2 a": 2 * 6 - 1, "DPM++ 2S a": 2 * 6 - 1, "DPM++ SDE": 2 * 6 - 1}
EXPECTED_CALLS |= {"Restart": 2 * 6 - 1, "PLMS": 6 + 1}


@pytest.mark.parametrize("sampler_name", ALL_SAMPLERS)
def test_callback_runs_once_per_step_and_model_calls_match_a1111(sampler_name):
    steps = 6
    sigmas = get_sigmas("Automatic", steps, MODEL, sampler_name)
    x = start_noise((1, 4, 8, 8), dtype=torch.float32) * sigmas[0]
    reports, model_calls = [], []

    def counting_denoiser(x_in, sigma):
        model_calls.append(float(sigma[0]))
        assert sigma.shape == (x_in.shape[0],)
        return gaussian_denoiser(x_in, sigma)

    sample(sampler_name, counting_denoiser, x, sigmas, model=MODEL, callback=reports.append)
    assert all({"i", "x", "denoised", "sigma", "sigma_next"} <= set(report) for report in reports)
    if sampler_name == "DPM adaptive":
        assert len(model_calls) % 3 == 0 and len(model_calls) >= 3 * len(reports) > 0
        return
    if sampler_name == "DPM fast":
        assert len(model_calls) == steps and len(reports) == len(fast_step_orders(steps))
        return
    assert [report["i"] for report in reports] == list(range(steps))
    assert [report["sigma"] for report in reports] == pytest.approx(sigmas[:-1].tolist())
    assert len(model_calls) == EXPECTED_CALLS.get(sampler_name, steps)


class Interrupted(Exception):
    pass


@pytest.mark.parametrize("sampler_name", ALL_SAMPLERS)
def test_exceptions_from_callback_and_denoiser_propagate(sampler_name):
    sigmas = get_sigmas("Automatic", 5, MODEL, sampler_name)
    x = start_noise((1, 4, 8, 8), dtype=torch.float32) * sigmas[0]

    def interrupt(_report):
        raise Interrupted

    with pytest.raises(Interrupted):
        sample(sampler_name, gaussian_denoiser, x, sigmas, model=MODEL, callback=interrupt)

    calls = []

    def failing_denoiser(x_in, sigma):
        calls.append(1)
        if len(calls) == 2:
            raise Interrupted
        return gaussian_denoiser(x_in, sigma)

    with pytest.raises(Interrupted):
        sample(sampler_name, failing_denoiser, x, sigmas, model=MODEL)
