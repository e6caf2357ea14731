"""The discrete DDPM noise schedule of a diffusion model, seen in sigma space.

A model trained on ``N`` discrete timesteps with cumulative products of alphas
``a_t`` corresponds, in k-diffusion scaling (``x = x0 + sigma * eps``), to the
noise levels ``sigma_t = sqrt((1 - a_t) / a_t)``.  Samplers work on sigmas; the
model wrapper and some schedules need to go back and forth between a sigma and
a (fractional) timestep, which is what :class:`DiscreteSchedule` provides.
"""

from __future__ import annotations

import torch
from torch import Tensor


def scaled_linear_alphas_cumprod(beta_start: float = 0.00085, beta_end: float = 0.012, steps: int = 1000) -> Tensor:
    """Cumulative alpha products of the "scaled linear" beta schedule used by SD 1.x/2.x/XL.

    The betas are linear in their square root: ``beta_i = lerp(sqrt(start), sqrt(end), i / (steps - 1)) ** 2``.
    Computed in float64 and returned as float32, as the original checkpoints store them.
    """
    if steps < 2:
        raise ValueError("steps must be at least 2")
    betas = torch.linspace(beta_start**0.5, beta_end**0.5, steps, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, dim=0).to(torch.float32)


class DiscreteSchedule:
    """Sigmas of a discrete-timestep diffusion model, with timestep <-> sigma conversion.

    ``sigmas[t]`` is ascending in ``t``; fractional timesteps are interpolated
    linearly in log-sigma between the two neighbouring discrete timesteps.
    """

    def __init__(self, alphas_cumprod: Tensor) -> None:
        alphas_cumprod = torch.as_tensor(alphas_cumprod).detach().to("cpu", torch.float32).flatten()
        if alphas_cumprod.numel() < 2:
            raise ValueError("alphas_cumprod needs at least two timesteps")
        self.alphas_cumprod: Tensor = alphas_cumprod
        self.sigmas: Tensor = ((1.0 - alphas_cumprod) / alphas_cumprod) ** 0.5
        self.log_sigmas: Tensor = self.sigmas.log()
        if not bool((self.sigmas[1:] > self.sigmas[:-1]).all()):
            raise ValueError("alphas_cumprod must be strictly decreasing (sigmas ascending)")

    @classmethod
    def scaled_linear(cls, beta_start: float = 0.00085, beta_end: float = 0.012, steps: int = 1000) -> DiscreteSchedule:
        """The schedule of Stable Diffusion checkpoints (SD 1.x, 2.x, XL)."""
        return cls(scaled_linear_alphas_cumprod(beta_start, beta_end, steps))

    @property
    def timestep_count(self) -> int:
        """Number of discrete timesteps (1000 for SD)."""
        return self.sigmas.numel()

    @property
    def sigma_min(self) -> float:
        """Smallest sigma, at timestep 0."""
        return float(self.sigmas[0])

    @property
    def sigma_max(self) -> float:
        """Largest sigma, at the last timestep."""
        return float(self.sigmas[-1])

    def sigma_to_t(self, sigma: float | Tensor) -> float | Tensor:
        """Fractional timestep of ``sigma`` (log-sigma interpolation, clamped to the table).

        A float gives a float; a tensor gives a float32 tensor of the same shape.
        """
        is_scalar = not isinstance(sigma, Tensor)
        sigma_tensor = torch.as_tensor(sigma, dtype=torch.float32).to("cpu")
        log_sigma = sigma_tensor.clamp(min=torch.finfo(torch.float32).tiny).log()
        # Index of the last table entry whose log-sigma is <= the query.
        low = torch.searchsorted(self.log_sigmas, log_sigma.flatten(), right=True) - 1
        low = low.clamp(0, self.timestep_count - 2)
        low_log, high_log = self.log_sigmas[low], self.log_sigmas[low + 1]
        weight = ((log_sigma.flatten() - low_log) / (high_log - low_log)).clamp(0.0, 1.0)
        timestep = (low.to(torch.float32) + weight).reshape(sigma_tensor.shape)
        return float(timestep) if is_scalar else timestep

    def t_to_sigma(self, t: float | Tensor) -> float | Tensor:
        """Sigma at fractional timestep ``t`` (clamped to ``[0, timestep_count - 1]``).

        A float gives a float; a tensor gives a float32 tensor of the same shape.
        """
        is_scalar = not isinstance(t, Tensor)
        t_tensor = torch.as_tensor(t, dtype=torch.float32).to("cpu")
        t_flat = t_tensor.flatten().clamp(0.0, self.timestep_count - 1)
        low = t_flat.floor().long().clamp(max=self.timestep_count - 2)
        weight = t_flat - low.to(torch.float32)
        log_sigma = torch.lerp(self.log_sigmas[low], self.log_sigmas[low + 1], weight)
        sigma = log_sigma.exp().reshape(t_tensor.shape)
        return float(sigma) if is_scalar else sigma

    def __repr__(self) -> str:
        return f"DiscreteSchedule(timesteps={self.timestep_count}, sigma_min={self.sigma_min:.4f}, sigma_max={self.sigma_max:.4f})"
