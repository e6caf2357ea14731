"""Brownian-tree noise for the SDE samplers (DPM++ SDE, 2M SDE, 3M SDE), as A1111 feeds them.

A1111 gives these samplers noise from one Brownian tree per image, seeded with the image's seed, so
the noise between two sigmas does not depend on the step count or the batch. torchsde implements the
tree; this module only adapts it to the samplers' `noise_sampler(sigma, sigma_next)` interface.
"""

from __future__ import annotations

import warnings

import torch


class BrownianTreeNoise:
    """`noise(sigma, sigma_next)`: unit-variance noise for the interval, one tree per batch item."""

    def __init__(self, x: torch.Tensor, sigmas: torch.Tensor, seeds: list[int]) -> None:
        import torchsde

        positive = sigmas[sigmas > 0]
        low = torch.as_tensor(float(positive.min()), device=x.device)
        high = torch.as_tensor(float(sigmas.max()), device=x.device)
        start = torch.zeros_like(x[0])
        self.trees = [torchsde.BrownianTree(low, start, high, entropy=seed) for seed in seeds]

    def __call__(self, sigma: torch.Tensor | float, sigma_next: torch.Tensor | float) -> torch.Tensor:
        first = torch.as_tensor(sigma, dtype=torch.float32)
        second = torch.as_tensor(sigma_next, dtype=torch.float32)
        low, high, sign = (first, second, 1.0) if first <= second else (second, first, -1.0)
        with warnings.catch_warnings():
            # torchsde stores the tree's ends rounded, so queries at the exact ends warn harmlessly.
            warnings.filterwarnings("ignore", message="Should have", category=UserWarning)
            increments = torch.stack([tree(low, high) for tree in self.trees]) * sign
        return increments / (high - low).abs().sqrt()
