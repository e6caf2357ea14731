"""Brownian-tree noise for the SDE samplers: per-seed determinism, unit variance, additive increments."""

import torch

from modules.sampling.brownian import BrownianTreeNoise

SIGMAS = torch.tensor([14.6, 5.0, 1.0, 0.1, 0.0])


def make(seeds):
    return BrownianTreeNoise(torch.zeros(len(seeds), 4, 16, 16), SIGMAS, seeds)


def test_same_seed_same_noise_and_batch_independent():
    alone = make([7])(5.0, 1.0)
    batched = make([3, 7])(5.0, 1.0)
    assert torch.equal(alone[0], batched[1])
    assert not torch.equal(batched[0], batched[1])


def test_unit_variance():
    noise = make([1, 2, 3, 4])(5.0, 1.0)
    assert abs(noise.std().item() - 1.0) < 0.05
    assert abs(noise.mean().item()) < 0.05


def test_increments_add_up():
    tree = make([11])
    whole = tree(5.0, 0.1) * (5.0 - 0.1) ** 0.5
    parts = tree(5.0, 1.0) * (5.0 - 1.0) ** 0.5 + tree(1.0, 0.1) * (1.0 - 0.1) ** 0.5
    assert torch.allclose(whole, parts, atol=1e-4)
