"""Noise sources: CUDA randn emulation, CPU generator, ImageRNG and slerp."""

import hashlib
import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from modules.sampling import philox, rng

FIXTURE = Path(__file__).parent / "fixtures" / "cuda_randn_vectors.json"
REFERENCE = json.loads(FIXTURE.read_text())
CASES = REFERENCE["cases"]


def case_id(case: dict) -> str:
    return f"seed{case['seed']}-{'x'.join(map(str, case['shape']))}"


def sha256_of(tensor: torch.Tensor) -> str:
    return hashlib.sha256(tensor.numpy().astype(np.float32).tobytes()).hexdigest()


# --- the reference vectors from a real H100 --------------------------------


@pytest.mark.parametrize("source", ["GPU", "NV"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_reference_vectors_are_reproduced_bit_exactly(case, source):
    noise = rng.randn(case["seed"], tuple(case["shape"]), source)
    assert noise.dtype == torch.float32
    assert tuple(noise.shape) == tuple(case["shape"])
    flat = noise.flatten()
    assert flat[:16].tolist() == case["first"]
    assert flat[-8:].tolist() == case["last"]
    assert flat.double().sum().item() == pytest.approx(case["sum"], abs=1e-9)
    assert sha256_of(noise) == case["sha256_f32"]


def test_reference_file_covers_the_expected_cases():
    assert len(CASES) == 25
    assert {case["seed"] for case in CASES} == {0, 1, 1234, 3141592653, 4294967295}


# --- building blocks ---------------------------------------------------------


@pytest.mark.parametrize(
    ("counter", "key", "expected"),
    [
        ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
        (
            (0xFFFFFFFF,) * 4,
            (0xFFFFFFFF, 0xFFFFFFFF),
            (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD),
        ),
        (
            (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
            (0xA4093822, 0x299F31D0),
            (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
        ),
    ],
)
def test_philox_matches_random123_known_answers(counter, key, expected):
    words = philox.philox4x32_10([np.array([word], np.uint64) for word in counter], key)
    assert tuple(int(word[0]) for word in words) == expected


def test_fused_multiply_add_rounds_once():
    # 1.5 * (1 + 2**-23) lies exactly halfway between two floats; the tiny
    # addend must pull the single rounding down, which double rounding misses.
    a = np.array([1 + 2**-23], np.float32)
    b = np.array([1.5], np.float32)
    tiny = np.float32(-(2.0**-60))
    result = philox.fused_multiply_add_float32(a, b, tiny)
    assert result[0] == np.float32(1.5 + 2**-23)
    plain = np.float32(np.float64(a[0]) * np.float64(b[0]) + np.float64(tiny))
    assert plain != result[0]


def test_cuda_logf_reproduces_a_one_ulp_deviation_of_the_gpu():
    # The GPU's logf is not correctly rounded here; the reference vectors
    # depend on getting exactly its answer.
    value = np.array([0x3F28B08B], np.uint32).view(np.float32)
    assert philox.cuda_logf(value).view(np.uint32)[0] == 0xBED5905C
    assert np.float32(math.log(float(value[0]))).view(np.uint32) == 0xBED5905B


def test_cuda_logf_is_within_one_ulp_of_the_true_log():
    values = np.linspace(2.0**-33, 1.0, 20001, dtype=np.float32)[1:]
    result = philox.cuda_logf(values).astype(np.float64)
    exact = np.log(values.astype(np.float64))
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    assert np.all(np.abs(result - exact) <= ulp)


def test_sfu_sine_and_cosine_track_the_true_functions():
    turns = np.linspace(1e-4, 0.9999, 5001, dtype=np.float32)
    angle = 2 * np.pi * turns.astype(np.float64)
    sine = philox.sfu_sine_of_turns(turns).astype(np.float64)
    cosine = philox.sfu_sine_of_turns(turns, cosine=True).astype(np.float64)
    # NVIDIA documents an absolute error of 2**-21.41 for __sinf.
    assert np.max(np.abs(sine - np.sin(angle))) < 2.0**-21.41
    assert np.max(np.abs(cosine - np.cos(angle))) < 2.0**-21.41
    assert np.max(np.abs(sine - np.sin(angle))) > 0  # an approximation, not libm


# --- the emulated CUDA generator -------------------------------------------


def test_successive_draws_continue_the_philox_stream():
    generator = philox.PhiloxGenerator(1234)
    first = generator.randn((4, 8, 8))
    assert generator.offset == 4
    second = generator.randn((4, 8, 8))
    assert generator.offset == 8
    assert not np.array_equal(first, second)
    expected = philox.PhiloxGenerator(1234, offset=4).randn((4, 8, 8))
    assert np.array_equal(second, expected)
    again = philox.PhiloxGenerator(1234)
    assert np.array_equal(again.randn((4, 8, 8)), first)


def test_empty_draw_does_not_advance_the_offset():
    generator = philox.PhiloxGenerator(5)
    assert generator.randn((4, 0, 8)).shape == (4, 0, 8)
    assert generator.offset == 0


def test_capped_grid_layout_follows_the_cuda_kernel():
    # A one-block "GPU": 256 threads, each producing 4 normals per round.
    small_gpu = {"sm_count": 1, "max_threads_per_sm": 256}
    generator = philox.PhiloxGenerator(77, **small_gpu)
    noise = generator.randn((2048,))
    assert generator.offset == 8  # two rounds of curand_normal4
    # Slot 0 of round 0 is what an uncapped launch gives for the same threads.
    assert np.array_equal(noise[:256], philox.PhiloxGenerator(77).randn((256,)))
    # Round 1 reads the next Philox counter, i.e. the stream at offset 4.
    round_one = philox.PhiloxGenerator(77, offset=4).randn((256,))
    assert np.array_equal(noise[1024:1280], round_one)
    # Slot 1 is the cosine half of the same Box-Muller pair.
    counter = (
        np.zeros(256, np.uint64),
        np.zeros(256, np.uint64),
        np.arange(256, dtype=np.uint64),
        np.zeros(256, np.uint64),
    )
    words = philox.philox4x32_10(counter, (77, 0))
    radius = np.sqrt(-2 * np.log(words[0] * 2.0**-32 + 2.0**-33))
    angle = 2 * np.pi * (words[1] * 2.0**-32 + 2.0**-33)
    np.testing.assert_allclose(noise[256:512], radius * np.cos(angle), atol=3e-6)
    np.testing.assert_allclose(noise[:256], radius * np.sin(angle), atol=3e-6)


def test_seed_high_word_is_part_of_the_key():
    low = rng.randn(7, (16,), "NV")
    high = rng.randn(7 + 2**40, (16,), "NV")
    assert not torch.equal(low, high)
    assert torch.equal(high, rng.randn(7 + 2**40, (16,), "NV"))


def test_emulation_speed_smoke():
    start = time.perf_counter()
    noise = rng.randn(42, (4, 128, 128), "NV")
    elapsed = time.perf_counter() - start
    print(f"NV noise 4x128x128: {elapsed * 1000:.1f} ms")
    assert torch.isfinite(noise).all()
    assert abs(noise.mean().item()) < 0.02
    assert abs(noise.std().item() - 1) < 0.02


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_real_cuda_generator_matches_the_emulation():
    device = torch.device("cuda")
    for case in CASES:
        shape = tuple(case["shape"])
        real = rng.create_generator(case["seed"], "GPU", device)
        emulated = rng.create_generator(case["seed"], "NV", device)
        assert torch.equal(real.randn(shape), emulated.randn(shape))
        assert torch.equal(real.randn(shape), emulated.randn(shape))


# --- sources -----------------------------------------------------------------


def test_cpu_source_equals_torch_cpu_generator():
    torch_generator = torch.Generator("cpu").manual_seed(1234)
    ours = rng.create_generator(1234, "CPU")
    for _ in range(2):
        expected = torch.randn((4, 8, 8), generator=torch_generator)
        assert torch.equal(ours.randn((4, 8, 8)), expected)


@pytest.mark.parametrize("source", rng.NOISE_SOURCES)
def test_sources_are_deterministic_and_seed_dependent(source):
    first = rng.randn(99, (4, 16, 16), source)
    assert torch.equal(first, rng.randn(99, (4, 16, 16), source))
    assert not torch.equal(first, rng.randn(100, (4, 16, 16), source))


def test_cpu_and_gpu_sources_differ():
    assert not torch.equal(rng.randn(3, (16,), "CPU"), rng.randn(3, (16,), "GPU"))


def test_source_names_are_validated():
    with pytest.raises(ValueError, match="randn_source") as error:
        rng.create_generator(1, "TPU")
    for name in ("GPU", "CPU", "NV"):
        assert name in str(error.value)
    assert isinstance(rng.create_generator(1, "cpu"), rng.CpuNoiseGenerator)


@pytest.mark.parametrize("seed", [-1, 2**64])
def test_out_of_range_seeds_are_rejected(seed):
    with pytest.raises(ValueError, match="seed"):
        rng.randn(seed, (4,), "NV")


# --- slerp ---------------------------------------------------------------------


def test_slerp_endpoints_return_the_inputs():
    low = rng.randn(1, (4, 8, 8), "CPU")
    high = rng.randn(2, (4, 8, 8), "CPU")
    torch.testing.assert_close(rng.slerp(0.0, low, high), low)
    torch.testing.assert_close(rng.slerp(1.0, low, high), high)


def test_slerp_moves_along_the_great_circle():
    low = torch.tensor([[1.0, 0.0]])
    high = torch.tensor([[0.0, 1.0]])
    half = rng.slerp(0.5, low, high)
    torch.testing.assert_close(half, torch.tensor([[0.5**0.5, 0.5**0.5]]))
    third = rng.slerp(1 / 3, low, high)
    expected = torch.tensor([[math.cos(math.pi / 6), math.sin(math.pi / 6)]])
    torch.testing.assert_close(third, expected)


def test_slerp_of_equal_tensors_falls_back_to_linear():
    value = rng.randn(5, (4, 8, 8), "CPU")
    torch.testing.assert_close(rng.slerp(0.3, value, value.clone()), value)


# --- ImageRNG ------------------------------------------------------------------

SHAPE = (4, 16, 16)


def make_image_rng(**overrides) -> rng.ImageRNG:
    arguments = {
        "shape": SHAPE,
        "seeds": [11, 12],
        "subseeds": [21, 22],
        "subseed_strength": 0.0,
        "seed_resize_from_h": 0,
        "seed_resize_from_w": 0,
        "source": "NV",
    }
    arguments.update(overrides)
    return rng.ImageRNG(**arguments)


def test_first_stacks_each_seeds_noise():
    noise = make_image_rng().first()
    assert noise.shape == (2, *SHAPE)
    assert torch.equal(noise[0], rng.randn(11, SHAPE, "NV"))
    assert torch.equal(noise[1], rng.randn(12, SHAPE, "NV"))


def test_next_continues_each_generator():
    image_rng = make_image_rng()
    first = image_rng.first()
    step = image_rng.next()
    assert step.shape == first.shape
    assert not torch.equal(step, first)
    generator = rng.create_generator(11, "NV")
    generator.randn(SHAPE)
    assert torch.equal(step[0], generator.randn(SHAPE))
    other = make_image_rng()
    other.first()
    assert torch.equal(other.next(), step)


def test_next_before_first_returns_first():
    assert torch.equal(make_image_rng().next(), make_image_rng().first())


def test_eta_noise_seed_delta_reseeds_after_first():
    image_rng = make_image_rng(eta_noise_seed_delta=31337)
    first = image_rng.first()
    assert torch.equal(first, make_image_rng().first())
    step = image_rng.next()
    assert torch.equal(step[0], rng.randn(11 + 31337, SHAPE, "NV"))
    assert torch.equal(step[1], rng.randn(12 + 31337, SHAPE, "NV"))


def test_variation_strength_blends_towards_the_subseed():
    seed_noise = rng.randn(11, SHAPE, "NV")
    subseed_noise = rng.randn(21, SHAPE, "NV")
    unchanged = make_image_rng(subseed_strength=0.0).first()[0]
    assert torch.equal(unchanged, seed_noise)
    slight = make_image_rng(subseed_strength=0.1).first()[0]
    assert not torch.equal(slight, seed_noise)
    similarity = torch.nn.functional.cosine_similarity(slight.flatten(), seed_noise.flatten(), dim=0)
    assert similarity > 0.98
    assert (slight - seed_noise).abs().max() < 0.6
    full = make_image_rng(subseed_strength=1.0).first()[0]
    torch.testing.assert_close(full, subseed_noise, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(slight, rng.slerp(0.1, seed_noise, subseed_noise))


def test_missing_subseeds_default_to_zero():
    noise = make_image_rng(subseeds=[21], subseed_strength=1.0).first()
    torch.testing.assert_close(noise[1], rng.randn(0, SHAPE, "NV"), atol=1e-4, rtol=1e-4)


def test_seed_resize_from_smaller_keeps_the_centre():
    # Noise made for 64x64 pixels (8x8 latent) sits in the middle of 16x16.
    noise = make_image_rng(seed_resize_from_h=64, seed_resize_from_w=64).first()[0]
    small = rng.randn(11, (4, 8, 8), "NV")
    assert torch.equal(noise[:, 4:12, 4:12], small)
    filler = rng.randn(11, SHAPE, "NV")
    border = torch.ones(SHAPE, dtype=torch.bool)
    border[:, 4:12, 4:12] = False
    assert torch.equal(noise[border], filler[border])


def test_seed_resize_from_larger_crops_the_centre():
    noise = make_image_rng(seed_resize_from_h=192, seed_resize_from_w=256).first()[0]
    large = rng.randn(11, (4, 24, 32), "NV")
    assert torch.equal(noise, large[:, 4:20, 8:24])


def test_seed_resize_odd_difference_keeps_last_column_from_the_image():
    noise = make_image_rng(seed_resize_from_h=128, seed_resize_from_w=136).first()[0]
    large = rng.randn(11, (4, 16, 17), "NV")
    filler = rng.randn(11, SHAPE, "NV")
    assert torch.equal(noise[:, :, :15], large[:, :, 1:16])
    assert torch.equal(noise[:, :, 15], filler[:, :, 15])


def test_seed_resize_with_variation_blends_at_the_small_size():
    image_rng = make_image_rng(seed_resize_from_h=64, seed_resize_from_w=64, subseed_strength=0.5)
    noise = image_rng.first()[0]
    blended = rng.slerp(0.5, rng.randn(11, (4, 8, 8), "NV"), rng.randn(21, (4, 8, 8), "NV"))
    torch.testing.assert_close(noise[:, 4:12, 4:12], blended)


def test_prefetched_draws_equal_the_plain_stream():
    """Vectorised prefetching must not change which values each draw gets, even when shapes change."""
    from modules.sampling.philox import PhiloxGenerator
    from modules.sampling.rng import PhiloxNoiseGenerator

    shapes = [(4, 8, 8), (4, 8, 8), (4, 8, 8), (2, 3), (4, 8, 8), (4, 8, 8)] + [(4, 8, 8)] * 12
    plain = PhiloxGenerator(1234)
    expected = [plain.randn(shape) for shape in shapes]
    buffered = PhiloxNoiseGenerator(1234)
    for shape, want in zip(shapes, expected, strict=True):
        assert np.array_equal(buffered.randn(shape).numpy(), want)
    many = PhiloxGenerator(1234).randn_many((4, 8, 8), 3)
    assert np.array_equal(many[2], expected[2])
