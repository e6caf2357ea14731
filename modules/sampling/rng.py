"""Initial and per-step latent noise, following A1111's "RNG source" setting.

Sources:

* ``"CPU"``: torch's CPU generator (``torch.Generator("cpu").manual_seed``).
* ``"GPU"``: what ``torch.randn`` returns on an NVIDIA GPU for the seed.  On a
  CUDA device the real generator is used; everywhere else the bit-exact CPU
  emulation in :mod:`modules.sampling.philox`.
* ``"NV"``: always the emulation, so it is the same on every machine.

Seeds must lie in ``[0, 2**64 - 1]`` (A1111 resolves ``-1`` to a random seed
before noise is made; torch would remap other negative values).

Every generator returns float32 tensors on the CPU; callers move them to the
model's device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch

from modules.sampling.philox import PhiloxGenerator, validate_seed

NOISE_SOURCES: tuple[str, ...] = ("GPU", "CPU", "NV")

# A1111 falls back to linear interpolation when the normalised vectors are
# this close to parallel.
SLERP_LINEAR_THRESHOLD = 0.9995


class NoiseGenerator(Protocol):
    """A seeded stream of standard normal tensors."""

    def randn(self, shape: Sequence[int]) -> torch.Tensor:
        """Draw the next float32 tensor of ``shape`` (on the CPU)."""
        ...


class CpuNoiseGenerator:
    """The "CPU" source: torch's Mersenne Twister CPU generator."""

    def __init__(self, seed: int) -> None:
        """Seed a private CPU generator with ``seed``."""
        self.generator = torch.Generator(device="cpu").manual_seed(validate_seed(seed))

    def randn(self, shape: Sequence[int]) -> torch.Tensor:
        """Draw the next tensor of ``shape`` from the CPU generator."""
        return torch.randn(tuple(shape), generator=self.generator, dtype=torch.float32, device="cpu")


class PhiloxNoiseGenerator:
    """The "NV" source (and "GPU" without CUDA): emulated CUDA Philox noise."""

    PREFETCH = 8

    def __init__(self, seed: int) -> None:
        """Start the emulated CUDA stream of ``seed`` at offset 0."""
        self.generator = PhiloxGenerator(seed)
        self._buffered: list[np.ndarray] = []
        self._last_shape: tuple[int, ...] | None = None

    def randn(self, shape: Sequence[int]) -> torch.Tensor:
        """Draw the next tensor of ``shape`` as a CUDA generator would.

        Samplers draw one tensor of the same shape per step; from the second such draw on, the next
        few are computed in one vectorised pass and handed out in order (the values are the same).
        """
        shape = tuple(int(size) for size in shape)
        if self._buffered and self._buffered[0].shape == shape:
            return torch.from_numpy(self._buffered.pop(0))
        if self._buffered:
            # A different shape: rewind to the first undrawn tensor and drop the prefetched ones.
            numel = math.prod(self._buffered[0].shape)
            self.generator.offset -= self.generator.offset_increment(numel) * len(self._buffered)
            self._buffered = []
        count = self.PREFETCH if shape == self._last_shape else 1
        self._last_shape = shape
        draws = list(self.generator.randn_many(shape, count))
        self._buffered = draws[1:]
        return torch.from_numpy(draws[0])


class CudaNoiseGenerator:
    """The "GPU" source on a CUDA device: the real torch CUDA generator."""

    def __init__(self, seed: int, device: torch.device) -> None:
        """Seed a private generator on the CUDA ``device``."""
        self.device = device
        self.generator = torch.Generator(device=device).manual_seed(validate_seed(seed))

    def randn(self, shape: Sequence[int]) -> torch.Tensor:
        """Draw on the GPU and return the result on the CPU."""
        noise = torch.randn(
            tuple(shape),
            generator=self.generator,
            dtype=torch.float32,
            device=self.device,
        )
        return noise.cpu()


def normalize_source(source: str) -> str:
    """Return the canonical name of a noise source or raise ValueError."""
    canonical = str(source).strip().upper()
    if canonical not in NOISE_SOURCES:
        valid = ", ".join(NOISE_SOURCES)
        raise ValueError(f"unknown randn_source {source!r}; valid values are: {valid}")
    return canonical


def create_generator(seed: int, source: str, device: torch.device | None = None) -> NoiseGenerator:
    """Create the noise generator of ``source`` seeded with ``seed``.

    ``device`` only matters for "GPU": on a CUDA device (with CUDA available)
    the real CUDA generator is used, otherwise the emulation.
    """
    canonical = normalize_source(source)
    if canonical == "CPU":
        return CpuNoiseGenerator(seed)
    if canonical == "GPU" and _is_cuda(device):
        return CudaNoiseGenerator(seed, torch.device(device))
    return PhiloxNoiseGenerator(seed)


def _is_cuda(device: torch.device | str | None) -> bool:
    """True when ``device`` names a CUDA device that torch can use."""
    if device is None:
        return False
    return torch.device(device).type == "cuda" and torch.cuda.is_available()


def randn(
    seed: int,
    shape: Sequence[int],
    source: str,
    device: torch.device | None = None,
) -> torch.Tensor:
    """Noise of ``shape`` from a fresh generator of ``source`` seeded with ``seed``."""
    return create_generator(seed, source, device).randn(shape)


def slerp(val: float, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between two noise tensors, as A1111 does it.

    Like A1111, vectors are normalised along dimension 1, so for a (C, H, W)
    latent each channel/column pair is interpolated on its own, and the
    near-parallel fallback weights ``low`` by ``val`` (A1111's order; it only
    triggers when both tensors are practically equal).  ``val`` 0 gives
    ``low`` and 1 gives ``high``.
    """
    low_unit = low / torch.norm(low, dim=1, keepdim=True)
    high_unit = high / torch.norm(high, dim=1, keepdim=True)
    dot = (low_unit * high_unit).sum(1)
    if dot.mean() > SLERP_LINEAR_THRESHOLD:
        return low * val + high * (1 - val)
    omega = torch.acos(dot)
    sin_omega = torch.sin(omega)
    low_weight = (torch.sin((1.0 - val) * omega) / sin_omega).unsqueeze(1)
    high_weight = (torch.sin(val * omega) / sin_omega).unsqueeze(1)
    return low_weight * low + high_weight * high


def paste_centered(canvas: torch.Tensor, patch: torch.Tensor) -> torch.Tensor:
    """Copy the centre of ``patch`` onto the centre of ``canvas`` (C, H, W).

    Offsets use floor division of the size differences, so when the patch is
    larger by an odd amount the last row/column of the canvas keeps its own
    values, matching A1111's seed-resize behaviour.
    """
    result = canvas.clone()
    offset_x = (canvas.shape[2] - patch.shape[2]) // 2
    offset_y = (canvas.shape[1] - patch.shape[1]) // 2
    width = patch.shape[2] if offset_x >= 0 else patch.shape[2] + 2 * offset_x
    height = patch.shape[1] if offset_y >= 0 else patch.shape[1] + 2 * offset_y
    target_x, target_y = max(offset_x, 0), max(offset_y, 0)
    source_x, source_y = max(-offset_x, 0), max(-offset_y, 0)
    result[:, target_y : target_y + height, target_x : target_x + width] = patch[
        :, source_y : source_y + height, source_x : source_x + width
    ]
    return result


class ImageRNG:
    """Per-image noise streams for a batch, with variation seeds and resize.

    :meth:`first` makes the initial latent noise; :meth:`next` draws one more
    tensor per image (ancestral and SDE samplers call it every step).  If
    :meth:`next` is called before :meth:`first` it returns :meth:`first`.
    """

    def __init__(
        self,
        shape: Sequence[int],
        seeds: list[int],
        subseeds: list[int] | None = None,
        subseed_strength: float = 0.0,
        seed_resize_from_h: int = 0,
        seed_resize_from_w: int = 0,
        source: str = "GPU",
        eta_noise_seed_delta: int = 0,
        device: torch.device | None = None,
    ) -> None:
        """``shape`` is one image's latent shape (C, H, W); sizes in pixels."""
        self.shape = tuple(int(size) for size in shape)
        self.seeds = [int(seed) for seed in seeds]
        self.subseeds = subseeds
        self.subseed_strength = float(subseed_strength)
        self.seed_resize_from_h = int(seed_resize_from_h)
        self.seed_resize_from_w = int(seed_resize_from_w)
        self.source = normalize_source(source)
        self.eta_noise_seed_delta = int(eta_noise_seed_delta or 0)
        self.device = device
        self.generators = [self._generator(seed) for seed in self.seeds]
        self.is_first = True

    def _generator(self, seed: int) -> NoiseGenerator:
        return create_generator(seed, self.source, self.device)

    def _fresh_noise(self, seed: int, shape: tuple[int, ...]) -> torch.Tensor:
        return self._generator(seed).randn(shape)

    def noise_shape(self) -> tuple[int, ...]:
        """Shape the seed's noise is made at (differs when resizing seeds)."""
        if self.seed_resize_from_h <= 0 or self.seed_resize_from_w <= 0:
            return self.shape
        return (
            self.shape[0],
            self.seed_resize_from_h // 8,
            self.seed_resize_from_w // 8,
        )

    def first(self) -> torch.Tensor:
        """Initial noise for every image, stacked to (B, C, H, W)."""
        images = [
            self._initial_noise(index, seed, generator)
            for index, (seed, generator) in enumerate(zip(self.seeds, self.generators, strict=True))
        ]
        if self.eta_noise_seed_delta:
            self.generators = [self._generator(seed + self.eta_noise_seed_delta) for seed in self.seeds]
        self.is_first = False
        return torch.stack(images)

    def _initial_noise(self, index: int, seed: int, generator: NoiseGenerator) -> torch.Tensor:
        """One image's initial noise: seed noise, variation blend, resize."""
        noise_shape = self.noise_shape()
        resized = noise_shape != self.shape
        # Resized seed noise comes from a fresh generator of the same seed.
        noise = self._fresh_noise(seed, noise_shape) if resized else generator.randn(self.shape)
        if self.subseeds is not None and self.subseed_strength != 0:
            subseeds = self.subseeds
            subseed = subseeds[index] if index < len(subseeds) else 0
            subnoise = self._fresh_noise(subseed, noise_shape)
            noise = slerp(self.subseed_strength, noise, subnoise)
        if resized:
            # The image's own generator fills the area the seed noise misses.
            noise = paste_centered(generator.randn(self.shape), noise)
        return noise

    def next(self) -> torch.Tensor:
        """One more draw of ``shape`` from each image's generator, stacked."""
        if self.is_first:
            return self.first()
        return torch.stack([generator.randn(self.shape) for generator in self.generators])
