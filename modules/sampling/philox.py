"""CPU emulation of ``torch.randn`` on an NVIDIA GPU.

On CUDA, ``torch.manual_seed(seed); torch.randn(shape, device="cuda")`` runs a
kernel in which every thread seeds curand's Philox4x32-10 generator with
``(seed, subsequence=thread index, offset=generator offset)``, draws four
uniforms and turns them into four normals with Box-Muller (``curand_normal4``).
Output element ``i`` is written by thread ``i % threads`` with normal number
``(i // threads) % 4`` of loop iteration ``i // (4 * threads)``.

To get the same float32 bits without a GPU, this module reproduces each step
with exact integer or float64 arithmetic:

* Philox4x32-10 itself (pure integer maths);
* the uint32 to uniform conversion and the single-rounding fused multiply-adds
  that nvcc emits;
* CUDA's ``logf`` (libdevice's polynomial, whose constants are given below);
* ``__sincosf``, which compiles to a round-toward-zero multiply by 1/(2 pi)
  followed by the GPU's special function unit (SFU).  The SFU evaluates a
  quadratic from a 64-entry table over a 2.23-bit fixed-point quarter turn and
  truncates the result to 24 bits; the table contents are those published by
  the envytools project's reverse engineering of NVIDIA's SFU.

The result matches the sha256 of real H100 output for the reference vectors in
``tests/fixtures/cuda_randn_vectors.json``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

UINT32_MASK = 0xFFFFFFFF
UINT64_MAX = 0xFFFFFFFFFFFFFFFF

PHILOX_MULTIPLIERS = (0xD2511F53, 0xCD9E8D57)
PHILOX_KEY_INCREMENTS = (0x9E3779B9, 0xBB67AE85)
PHILOX_ROUNDS = 10

# Launch geometry of torch's distribution kernels (DistributionTemplates.h).
THREADS_PER_BLOCK = 256
NORMALS_PER_THREAD_CALL = 4
# The reference vectors come from an H100 SXM: 132 SMs of 2048 threads.  The
# SM count only matters once a tensor has more elements than the grid has
# threads (270,336 here), because torch caps the grid at one full wave.
DEFAULT_SM_COUNT = 132
DEFAULT_MAX_THREADS_PER_SM = 2048

# libdevice __nv_logf: log1p(f) = f + f*f*P(f) on f = m - 1, m in [2/3, 4/3).
_LOG_POLYNOMIAL = tuple(
    np.float32(value)
    for value in (
        -0.13018856942653656,
        0.1408461034297943,
        -0.12148627638816833,
        0.1398061066865921,
        -0.16684235632419586,
        0.20012299716472626,
        -0.24999669194221497,
        0.333331823348999,
        -0.5,
    )
)
_LOG_REDUCTION_OFFSET = 0x3F2AAAAB  # bits of 2/3: mantissas land in [2/3, 4/3)
_LN2_FLOAT32 = np.float32(0.6931471824645996)

_TWO_PI_FLOAT32 = np.float32(2.0 * math.pi)
_INVERSE_TWO_PI_FLOAT32 = np.float32(1.0 / (2.0 * math.pi))
# curand's CURAND_2POW32_INV_2PI: 2**-32 * float32(2 pi), exact in float32.
_UNIFORM_TO_ANGLE = np.float32(np.float32(2.0**-32) * _TWO_PI_FLOAT32)

# SFU sine table for one quarter turn split into 64 slices: the value (26
# fractional bits), the slope (15 bits) and the curvature term (11 bits, signed).
_SFU_SINE_VALUE = (
    0x0000000, 0x019214E, 0x0323EC8, 0x04B547C, 0x0645E94, 0x07D5934, 0x096407A,
    0x0AF109C, 0x0C7C5BA, 0x0E05C10, 0x0F8CFC8, 0x1111D24, 0x129405E, 0x14135CA,
    0x158F9A2, 0x170884C, 0x187DE2A, 0x19EF796, 0x1B5D0FE, 0x1CC66E8, 0x1E2B5D4,
    0x1F8BA48, 0x20E70EC, 0x223D66C, 0x238E760, 0x24DA0A8, 0x261FEFC, 0x275FF44,
    0x2899E5E, 0x29CD952, 0x2AFAD20, 0x2C216E4, 0x2D413CA, 0x2E5A104, 0x2F6BBE4,
    0x30761BE, 0x3179008, 0x327444C, 0x3367C04, 0x34534F2, 0x3536CC0, 0x361214E,
    0x36E5064, 0x37AF812, 0x3871658, 0x392A960, 0x39DAF5C, 0x3A82698, 0x3B20D7A,
    0x3BB6274, 0x3C4241C, 0x3CC511E, 0x3D3E82C, 0x3DAE822, 0x3E14FDA, 0x3E71E78,
    0x3EC52FC, 0x3F0ECA0, 0x3F4EAB2, 0x3F84C8E, 0x3FB11B2, 0x3FD39BA, 0x3FEC43C,
    0x3FFB10C,
)  # fmt: skip
_SFU_SINE_SLOPE = (
    0x6489, 0x6482, 0x646A, 0x6444, 0x640D, 0x63C8, 0x6373, 0x630E, 0x629B, 0x6218,
    0x6186, 0x60E5, 0x6035, 0x5F76, 0x5EA9, 0x5DCD, 0x5CE2, 0x5BE9, 0x5AE2, 0x59CD,
    0x58AA, 0x577A, 0x563C, 0x54F0, 0x5398, 0x5232, 0x50C0, 0x4F42, 0x4DB7, 0x4C21,
    0x4A7E, 0x48D0, 0x4717, 0x4553, 0x4384, 0x41AB, 0x3FC8, 0x3DDA, 0x3BE4, 0x39E4,
    0x37DB, 0x35C9, 0x33B0, 0x318E, 0x2F65, 0x2D34, 0x2AFC, 0x28BE, 0x2679, 0x242F,
    0x21DF, 0x1F89, 0x1D2F, 0x1AD0, 0x186E, 0x1607, 0x139D, 0x1130, 0x0EC0, 0x0C4F,
    0x09DB, 0x0765, 0x04EF, 0x0278,
)  # fmt: skip
_SFU_SINE_CURVATURE = (
    -14, -48, -76, -110, -137, -171, -201, -229, -262, -292, -322, -352, -381, -410,
    -441, -470, -497, -525, -553, -581, -608, -637, -664, -688, -715, -738, -763, -790,
    -812, -839, -859, -881, -904, -926, -946, -967, -988, -1004, -1025, -1043, -1059,
    -1074, -1093, -1107, -1123, -1136, -1148, -1162, -1172, -1185, -1196, -1203, -1213,
    -1220, -1230, -1236, -1242, -1247, -1250, -1258, -1260, -1260, -1263, -1265,
)  # fmt: skip
_SFU_TABLE = np.array([_SFU_SINE_VALUE, _SFU_SINE_SLOPE, _SFU_SINE_CURVATURE], dtype=np.int64)
_QUARTER_TURN_FRACTION_BITS = 23
_SFU_RESULT_SCALE_BITS = 37  # the table sum has 37 fractional bits
_FLOAT32_SIGNIFICAND_BITS = 24


def philox4x32_10(counter: Sequence[np.ndarray], key: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Run the Philox4x32-10 block function on arrays of 128-bit counters.

    ``counter`` holds four uint64 arrays of 32-bit words (low word first),
    ``key`` the two 32-bit key words.  Returns the four output words as uint64
    arrays holding values below 2**32.
    """
    mask = np.uint64(UINT32_MASK)
    shift = np.uint64(32)
    multiplier_0 = np.uint64(PHILOX_MULTIPLIERS[0])
    multiplier_1 = np.uint64(PHILOX_MULTIPLIERS[1])
    word_0, word_1, word_2, word_3 = (np.asarray(word, dtype=np.uint64) for word in counter)
    key_0, key_1 = key[0] & UINT32_MASK, key[1] & UINT32_MASK
    for _ in range(PHILOX_ROUNDS):
        product_0 = multiplier_0 * word_0
        product_1 = multiplier_1 * word_2
        word_0, word_1, word_2, word_3 = (
            (product_1 >> shift) ^ word_1 ^ np.uint64(key_0),
            product_1 & mask,
            (product_0 >> shift) ^ word_3 ^ np.uint64(key_1),
            product_0 & mask,
        )
        key_0 = (key_0 + PHILOX_KEY_INCREMENTS[0]) & UINT32_MASK
        key_1 = (key_1 + PHILOX_KEY_INCREMENTS[1]) & UINT32_MASK
    return word_0, word_1, word_2, word_3


def fused_multiply_add_float32(a: ArrayLike, b: ArrayLike, c: ArrayLike) -> np.ndarray:
    """Return ``a * b + c`` rounded once to float32, like CUDA's ``fmaf``.

    The float32 product is exact in float64 and the float64 sum is off by at
    most half a float64 ulp.  Rounding that sum to float32 can only go wrong
    when it lands exactly halfway between two floats; for those few elements the
    exact error of the sum (two-sum) decides the direction.
    """
    product = np.multiply(a, b, dtype=np.float64)
    addend = np.asarray(c, dtype=np.float64)
    total = np.add(product, addend)
    halfway = np.uint64(1 << 28)  # float64 mantissa bit 28 is half a float32 ulp
    tie = (total.view(np.uint64) & np.uint64((1 << 29) - 1)) == halfway
    if tie.any():
        exact_product = product[tie]
        exact_addend = np.broadcast_to(addend, total.shape)[tie]
        tied_sum = total[tie]
        product_part = tied_sum - exact_addend
        error = (exact_product - product_part) + (exact_addend - (tied_sum - product_part))
        direction = np.where(error > 0, np.inf, -np.inf)
        nudged = np.nextafter(tied_sum, direction)
        total[tie] = np.where(error == 0, tied_sum, nudged)
    return total.astype(np.float32)


def cuda_logf(values: np.ndarray) -> np.ndarray:
    """Natural log of positive normal float32 values, bit-exact to CUDA's logf."""
    bits = values.view(np.int32).astype(np.int64)
    exponent_bits = (bits - _LOG_REDUCTION_OFFSET) & ~np.int64(0x7FFFFF)
    mantissa = (bits - exponent_bits).astype(np.int32).view(np.float32)
    exponent = (exponent_bits >> 23).astype(np.float32)
    reduced = mantissa - np.float32(1.0)
    polynomial = np.full(reduced.shape, _LOG_POLYNOMIAL[0], dtype=np.float32)
    for coefficient in _LOG_POLYNOMIAL[1:]:
        polynomial = fused_multiply_add_float32(polynomial, reduced, coefficient)
    log1p = fused_multiply_add_float32(polynomial * reduced, reduced, reduced)
    return fused_multiply_add_float32(exponent, _LN2_FLOAT32, log1p)


def _sfu_square(fraction: np.ndarray) -> np.ndarray:
    """The SFU's truncated square of a 17-bit slice offset, about x*x >> 19.

    The hardware sums shifted copies of ``x`` (one per set bit) with each copy
    truncated, so the result is a little below the exact square.
    """
    total = np.zeros_like(fraction)
    for bit in range(17):
        total += ((fraction >> bit) & 1) * (fraction >> (18 - bit))
    return total >> 1


def _round_toward_zero_float32(values: np.ndarray) -> np.ndarray:
    """Convert float64 values in float32's normal range to float32, truncating.

    Clearing the 29 float64 mantissa bits that float32 lacks truncates the
    magnitude, after which the conversion is exact.
    """
    truncated = values.view(np.uint64) & ~np.uint64((1 << 29) - 1)
    return truncated.view(np.float64).astype(np.float32)


def sfu_sine_of_turns(turns: np.ndarray, cosine: bool = False) -> np.ndarray:
    """Sine (or cosine) of ``2 pi * turns`` as the NVIDIA SFU computes it.

    ``turns`` are non-negative float32 values (the MUFU input); the angle is cut
    to a quadrant and a 23-bit fraction of a quarter turn, then evaluated from
    the table and truncated to a float32.
    """
    fixed_point = np.floor(turns.astype(np.float64) * 2.0 ** (_QUARTER_TURN_FRACTION_BITS + 2)).astype(np.int64)
    quadrant = (fixed_point >> _QUARTER_TURN_FRACTION_BITS) + (1 if cosine else 0)
    quadrant &= 3
    fraction_mask = (1 << _QUARTER_TURN_FRACTION_BITS) - 1
    fraction = fixed_point & fraction_mask
    # Odd quadrants run the quarter wave backwards (ones' complement mirror).
    fraction = np.where(quadrant & 1 == 1, ~fraction & fraction_mask, fraction)
    slice_index = fraction >> 17
    offset = fraction & 0x1FFFF
    table = _SFU_TABLE[:, slice_index]
    total = (table[0] << 11) + table[1] * offset + table[2] * _sfu_square(offset)
    _, bit_length = np.frexp(total.astype(np.float64))
    dropped_bits = np.maximum(bit_length - _FLOAT32_SIGNIFICAND_BITS, 0)
    total = (total >> dropped_bits) << dropped_bits
    magnitude = (total.astype(np.float64) * 2.0**-_SFU_RESULT_SCALE_BITS).astype(np.float32)
    return np.where(quadrant >= 2, -magnitude, magnitude)


def box_muller_polar(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Radius and angle (in turns, as fed to the SFU) of curand's Box-Muller.

    ``first`` and ``second`` are uint32 words; the radius is
    ``sqrt(-2 logf(u))`` with ``u = x * 2**-32 + 2**-33``.
    """
    first_float = first.astype(np.float64).astype(np.float32)
    second_float = second.astype(np.float64).astype(np.float32)
    # x * 2**-32 + 2**-33 is exact in float64, so this rounds once like fmaf.
    uniform = (first_float.astype(np.float64) * 2.0**-32 + 2.0**-33).astype(np.float32)
    angle = fused_multiply_add_float32(second_float, _UNIFORM_TO_ANGLE, _UNIFORM_TO_ANGLE / np.float32(2.0))
    radius = np.sqrt(np.float32(-2.0) * cuda_logf(uniform))
    # __sincosf scales by 1/(2 pi) with a round-toward-zero multiply.
    turns = _round_toward_zero_float32(angle.astype(np.float64) * np.float64(_INVERSE_TWO_PI_FLOAT32))
    return radius, turns


def curand_box_muller(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """curand's Box-Muller on two uint32 arrays: returns (r sin, r cos) float32."""
    radius, turns = box_muller_polar(first, second)
    sine = sfu_sine_of_turns(turns)
    cosine = sfu_sine_of_turns(turns, cosine=True)
    return radius * sine, radius * cosine


def _normals_from_words(words: Sequence[np.ndarray], slot: np.ndarray) -> np.ndarray:
    """Pick normal ``slot`` (0..3) of curand_normal4 for each Philox output."""
    if not np.any(slot):
        # Every element is its thread's first normal: skip the unused ones.
        radius, turns = box_muller_polar(words[0], words[1])
        return radius * sfu_sine_of_turns(turns)
    low_sine, low_cosine = curand_box_muller(words[0], words[1])
    high_sine, high_cosine = curand_box_muller(words[2], words[3])
    choices = np.stack([low_sine, low_cosine, high_sine, high_cosine])
    return np.take_along_axis(choices, slot[None, :], axis=0)[0]


def validate_seed(seed: int) -> int:
    """Return ``seed`` as an int in [0, 2**64 - 1] or raise ValueError."""
    seed = int(seed)
    if not 0 <= seed <= UINT64_MAX:
        raise ValueError(f"seed must be in [0, 2**64 - 1], got {seed}")
    return seed


class PhiloxGenerator:
    """A stand-in for a freshly seeded CUDA torch generator, running on CPU.

    Successive :meth:`randn` calls continue the stream the way the CUDA
    generator does: each call reads the current Philox offset and advances it
    by four per loop round of the launched kernel.
    """

    def __init__(
        self,
        seed: int,
        offset: int = 0,
        sm_count: int = DEFAULT_SM_COUNT,
        max_threads_per_sm: int = DEFAULT_MAX_THREADS_PER_SM,
    ) -> None:
        """Seed like ``torch.manual_seed(seed)``; ``offset`` must be a multiple
        of 4 (torch only ever advances it in such steps).  ``sm_count`` and
        ``max_threads_per_sm`` describe the emulated GPU."""
        self.seed = validate_seed(seed)
        if offset < 0 or offset % 4:
            raise ValueError(f"offset must be a non-negative multiple of 4: {offset}")
        self.offset = offset
        self.sm_count = sm_count
        self.max_threads_per_sm = max_threads_per_sm

    def launch_threads(self, numel: int) -> int:
        """Number of threads torch launches for a tensor of ``numel`` elements."""
        blocks = -(-numel // THREADS_PER_BLOCK)
        max_blocks = self.sm_count * (self.max_threads_per_sm // THREADS_PER_BLOCK)
        return THREADS_PER_BLOCK * min(blocks, max_blocks)

    def offset_increment(self, numel: int) -> int:
        """How far one draw of ``numel`` elements advances the Philox offset."""
        if numel == 0:
            return 0
        per_round = self.launch_threads(numel) * NORMALS_PER_THREAD_CALL
        return ((numel - 1) // per_round + 1) * NORMALS_PER_THREAD_CALL

    def randn(self, shape: Sequence[int]) -> np.ndarray:
        """Draw standard normals of ``shape`` as a float32 array."""
        return self.randn_many(shape, 1)[0]

    def randn_many(self, shape: Sequence[int], count: int) -> np.ndarray:
        """The next ``count`` draws of ``shape`` in one vectorised pass (same values as ``count``
        successive :meth:`randn` calls); returns an array of shape ``(count, *shape)``."""
        shape = tuple(int(size) for size in shape)
        numel = math.prod(shape)
        if numel == 0 or count == 0:
            return np.zeros((count, *shape), dtype=np.float32)
        if numel >= 2**31:
            raise ValueError("tensors of 2**31 or more elements are not emulated")
        threads = self.launch_threads(numel)
        increment = self.offset_increment(numel)
        element = np.arange(numel, dtype=np.int64)
        thread = np.tile(element % threads, count)
        pass_index = np.tile(element // threads, count)
        loop_round = pass_index // NORMALS_PER_THREAD_CALL
        slot = pass_index % NORMALS_PER_THREAD_CALL
        draw_offset = np.repeat(self.offset + increment * np.arange(count, dtype=np.int64), numel)

        counter_low = (draw_offset // 4 + loop_round).astype(np.uint64)
        counter = (
            counter_low & np.uint64(UINT32_MASK),
            counter_low >> np.uint64(32),
            thread.astype(np.uint64),
            np.zeros(numel * count, dtype=np.uint64),
        )
        key = (self.seed & UINT32_MASK, self.seed >> 32)
        words = philox4x32_10(counter, key)
        self.offset += increment * count
        return _normals_from_words(words, slot).reshape((count, *shape))
