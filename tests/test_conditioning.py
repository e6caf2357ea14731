"""Prompt conditioning on the tiny real models: 75-token chunks, BREAK, comma backtracking, emphasis
modes, clip skip, SDXL shapes, schedules switching inside the CFG denoiser and AND weights."""

import numpy as np
import pytest
import torch

from modules.generation.params import Txt2ImgParams
from modules.imaging.infotext import parse_infotext
from modules.models.engine import Conditioning, DiffusionEngine
from modules.models.loader import load_checkpoint, load_tokenizer
from modules.prompting.chunks import CHUNK_LENGTH, PromptTokenizer, count_tokens
from modules.prompting.conditioning import EncodeSettings
from modules.prompting.schedules import build_batch_conditioning
from modules.sampling.denoiser import CFGDenoiser
from modules.sampling.samplers import sample
from modules.sampling.schedules import get_sigmas

CPU = torch.device("cpu")


def load_engine(path) -> DiffusionEngine:
    return DiffusionEngine(load_checkpoint(path, device=CPU, dtype=torch.float32))


@pytest.fixture(scope="module")
def sd1(tiny_sd1_path):
    return load_engine(tiny_sd1_path)


@pytest.fixture(scope="module")
def sd2(tiny_sd2_path):
    return load_engine(tiny_sd2_path)


@pytest.fixture(scope="module")
def sdxl(tiny_sdxl_path):
    return load_engine(tiny_sdxl_path)


@pytest.fixture(scope="module")
def clip_tokenizer():
    return load_tokenizer("clip")


def words(count: int, word: str = "cat") -> str:
    return " ".join([word] * count)


# ---- chunks ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("tokens", "chunk_count", "limit"), [(1, 1, 75), (75, 1, 75), (76, 2, 150), (150, 2, 150), (151, 3, 225)])
def test_chunk_boundaries(clip_tokenizer, tokens, chunk_count, limit):
    chunker = PromptTokenizer(clip_tokenizer)
    chunks, count = chunker.chunk_line(words(tokens))
    assert count == tokens
    assert len(chunks) == chunk_count
    cat = clip_tokenizer.get_vocab()["cat</w>"]
    for chunk in chunks:
        assert len(chunk.tokens) == CHUNK_LENGTH + 2 == len(chunk.multipliers)
        assert chunk.tokens[0] == clip_tokenizer.bos_token_id and chunk.tokens[-1] == clip_tokenizer.eos_token_id
    assert sum(chunk.tokens.count(cat) for chunk in chunks) == tokens
    assert count_tokens(words(tokens), clip_tokenizer) == (tokens, limit)


def test_break_starts_a_new_chunk_and_counts_a_full_chunk(clip_tokenizer):
    chunker = PromptTokenizer(clip_tokenizer)
    chunks, count = chunker.chunk_line("cat BREAK dog")
    vocab = clip_tokenizer.get_vocab()
    assert len(chunks) == 2 and count == 76
    assert chunks[0].tokens[:3] == [clip_tokenizer.bos_token_id, vocab["cat</w>"], clip_tokenizer.eos_token_id]
    assert chunks[1].tokens[:3] == [clip_tokenizer.bos_token_id, vocab["dog</w>"], clip_tokenizer.eos_token_id]
    assert count_tokens("cat BREAK dog", clip_tokenizer) == (76, 150)


def test_comma_backtrack_moves_the_words_after_the_last_comma(clip_tokenizer):
    prompt = words(70) + ", " + words(10, "dog")
    comma = clip_tokenizer.get_vocab()[",</w>"]
    dog = clip_tokenizer.get_vocab()["dog</w>"]
    chunks, count = PromptTokenizer(clip_tokenizer).chunk_line(prompt)
    assert len(chunks) == 2
    assert chunks[0].tokens[71] == comma and dog not in chunks[0].tokens
    assert chunks[1].tokens[1:11] == [dog] * 10
    assert count == 75 + 10
    chunks, _ = PromptTokenizer(clip_tokenizer, comma_padding_backtrack=0).chunk_line(prompt)
    assert chunks[0].tokens[72:76] == [dog] * 4
    far = words(40) + ", " + words(50, "dog")
    chunks, _ = PromptTokenizer(clip_tokenizer).chunk_line(far)
    assert chunks[0].tokens[75] == dog  # the comma is 35 tokens back: more than 20, no backtrack


def test_emphasis_weights_land_on_their_tokens(clip_tokenizer):
    chunks, _ = PromptTokenizer(clip_tokenizer).chunk_line("a (cat:1.5) [dog]")
    assert chunks[0].multipliers[:5] == [1.0, 1.0, 1.5, pytest.approx(1 / 1.1), 1.0]
    none_mode, _ = PromptTokenizer(clip_tokenizer, emphasis="None").chunk_line("a (cat:1.5)")
    assert none_mode[0].multipliers[:7] == [1.0] * 7
    assert none_mode[0].tokens[2] != clip_tokenizer.get_vocab()["cat</w>"]  # "(" is literal text


def test_unknown_emphasis_mode_is_a_clear_error(clip_tokenizer):
    with pytest.raises(ValueError, match="emphasis"):
        PromptTokenizer(clip_tokenizer, emphasis="Loud")


# ---- encoding ---------------------------------------------------------------------------------------
def encode(engine, text, **settings):
    return engine.encode_prompts([text], **settings).cross_attention


def test_word_after_the_75th_token_changes_the_conditioning(sd1):
    first = encode(sd1, words(75) + " dog")
    second = encode(sd1, words(75) + " bird")
    assert first.shape[1] == second.shape[1] == 2 * (CHUNK_LENGTH + 2)
    assert torch.equal(first[:, :77], second[:, :77])
    assert not torch.allclose(first[:, 77:], second[:, 77:])
    assert torch.equal(first[:, :77], encode(sd1, words(75)))


def test_plain_weights_are_identical_to_plain_encoding_and_emphasis_modes_differ(sd1):
    plain = encode(sd1, "a cat on a mat")
    assert torch.equal(encode(sd1, "a (cat:1.0) on a mat"), plain)
    assert torch.equal(encode(sd1, "a (cat:1.5) on a mat", emphasis="Ignore"), plain)
    original = encode(sd1, "a (cat:1.5) on a mat")
    no_norm = encode(sd1, "a (cat:1.5) on a mat", emphasis="No norm")
    assert torch.allclose(no_norm[0, 2], plain[0, 2] * 1.5)
    assert torch.equal(no_norm[0, 1], plain[0, 1])
    assert torch.allclose(original.mean(), plain.mean(), atol=1e-6)
    ratio = plain.mean() / no_norm.mean()
    assert torch.allclose(original, no_norm * ratio, atol=1e-6)
    assert not torch.allclose(original, plain)


def test_clip_skip_changes_sd1_but_not_sd2(sd1, sd2):
    assert not torch.allclose(encode(sd1, "a cat"), encode(sd1, "a cat", clip_skip=2))
    assert torch.equal(encode(sd2, "a cat"), encode(sd2, "a cat", clip_skip=2))


def test_sdxl_uses_both_encoders_pooled_from_the_first_chunk_and_size_conditioning(sdxl):
    widths = sdxl.prompt_encoder.encoder_widths()
    short = sdxl.encode_prompts(["a cat"], width=96, height=64)
    assert short.cross_attention.shape == (1, 77, sum(widths))
    assert short.pooled.shape == (1, sdxl.checkpoint.text_encoders[1].config.projection_dim)
    assert short.time_ids.tolist() == [[64, 96, 0, 0, 64, 96]]
    long = sdxl.encode_prompts([words(75) + " dog"], width=96, height=64)
    assert long.cross_attention.shape == (1, 154, sum(widths))
    first_chunk = sdxl.encode_prompts([words(75)], width=96, height=64)
    assert torch.equal(long.pooled, first_chunk.pooled)
    assert torch.equal(long.cross_attention[:, :77], first_chunk.cross_attention)
    # the second chunk of both encoders is the chunk of "dog" alone
    assert torch.equal(long.cross_attention[:, 77:], sdxl.encode_prompts(["dog"]).cross_attention)


def test_texts_in_one_call_are_padded_with_empty_chunks(sd1):
    both = sd1.encode_prompts(["cat", words(80)])
    assert both.cross_attention.shape[:2] == (2, 154)
    empty_chunk = encode(sd1, "")
    assert torch.equal(both.cross_attention[0:1, 77:], empty_chunk)


@pytest.mark.parametrize("prompt", ["(" * 10_000 + "a" + ")" * 10_000, "[" * 5000 + "a", "[a|" * 300, "(a:1e38) (b:-1e38)"])
def test_hostile_prompts_encode_to_finite_states(sd1, prompt):
    batch = build_batch_conditioning(sd1.prompt_encoder, [prompt], 10, EncodeSettings(), composable=True)
    states = batch.at_step(0).rows.cross_attention
    assert states.shape[1] % 77 == 0
    assert bool(torch.isfinite(states).all())


# ---- schedules inside the denoiser -----------------------------------------------------------------
def marker_model(calls):
    """A fake model whose x0 for each row is that row's first cross-attention value."""

    def model(x, sigma, conditioning: Conditioning):
        calls.append(conditioning.cross_attention)
        value = conditioning.cross_attention[:, 0, 0].float()
        return value.view(-1, 1, 1, 1).expand(x.shape).clone()

    return model


def fake_conditioning(values):
    return Conditioning(torch.tensor(values, dtype=torch.float32).view(-1, 1, 1).expand(-1, 77, 4).clone())


def test_scheduled_conditioning_switches_at_the_right_step(sd1):
    settings = EncodeSettings()
    batch = build_batch_conditioning(sd1.prompt_encoder, ["a [cat:dog:2] on grass"], 5, settings, composable=True)
    cat = encode(sd1, "a cat on grass")
    dog = encode(sd1, "a dog on grass")
    seen = [batch.at_step(step).rows.cross_attention for step in range(5)]
    assert all(torch.equal(rows, cat) for rows in seen[:3])
    assert all(torch.equal(rows, dog) for rows in seen[3:])

    calls = []
    denoiser = CFGDenoiser(marker_model(calls), batch, None, 1.0, total_steps=5)
    x = torch.zeros(1, 4, 8, 8)
    for step in range(5):
        denoiser.step = step
        denoiser(x, torch.tensor([1.0]))
    assert [torch.equal(call, cat) for call in calls] == [True, True, True, False, False]

    # Heun evaluates the model twice per step (once on the last): the schedule advances per evaluation.
    calls.clear()
    denoiser = CFGDenoiser(marker_model(calls), batch, None, 1.0, total_steps=3)
    sigmas = get_sigmas("Automatic", 3, sd1.schedule, "Heun")
    sample("Heun", denoiser, torch.zeros(1, 4, 8, 8), sigmas, model=sd1.schedule)
    assert [torch.equal(call, cat) for call in calls] == [True, True, True, False, False]


def test_alternation_switches_every_step(sd1):
    batch = build_batch_conditioning(sd1.prompt_encoder, ["[cat|dog]"], 4, EncodeSettings(), composable=True)
    cat, dog = encode(sd1, "cat"), encode(sd1, "dog")
    # A1111 numbers schedule entries from 1 and sampling steps from 0: step 0 uses entry 1 too.
    expected = [cat, cat, dog, cat]
    assert [torch.equal(batch.at_step(step).rows.cross_attention, expected[step]) for step in range(4)] == [True] * 4


def test_and_weights_combine_as_composable_diffusion(sd1):
    cond = fake_conditioning([2.0, 5.0, 7.0])
    uncond = fake_conditioning([1.0])

    class Schedule:
        def at_step(self, step):
            from modules.prompting.schedules import StepConditioning

            return StepConditioning(cond, [[(0, 1.0), (1, 1.2), (2, -0.5)]])

    calls = []
    denoiser = CFGDenoiser(marker_model(calls), Schedule(), uncond, 7.0, total_steps=1)
    result = denoiser(torch.zeros(1, 4, 8, 8), torch.tensor([1.0]))
    expected = 1.0 + 7.0 * (1.0 * (2 - 1) + 1.2 * (5 - 1) - 0.5 * (7 - 1))
    assert torch.allclose(result, torch.full_like(result, expected))
    assert len(calls) == 1 and calls[0].shape[0] == 4


def test_and_prompt_is_split_into_weighted_subprompts(sd1):
    batch = build_batch_conditioning(sd1.prompt_encoder, ["cat AND dog :1.5"], 3, EncodeSettings(), composable=True)
    step = batch.at_step(0)
    assert step.weights == [[(0, 1.0), (1, 1.5)]]
    assert torch.equal(step.rows.cross_attention[0:1], encode(sd1, "cat"))
    assert torch.equal(step.rows.cross_attention[1:2], encode(sd1, " dog"))
    negative = build_batch_conditioning(sd1.prompt_encoder, ["cat AND dog"], 3, EncodeSettings(), composable=False)
    assert negative.at_step(0).weights == [[(0, 1.0)]]


def test_cond_and_uncond_of_different_lengths_run_as_two_calls():
    calls = []
    cond = Conditioning(torch.full((1, 154, 4), 3.0))
    uncond = fake_conditioning([1.0])
    denoiser = CFGDenoiser(marker_model(calls), cond, uncond, 2.0, total_steps=1)
    result = denoiser(torch.zeros(1, 4, 8, 8), torch.tensor([1.0]))
    assert [call.shape[1] for call in calls] == [154, 77]
    assert torch.allclose(result, torch.full_like(result, 1.0 + 2.0 * (3.0 - 1.0)))


def test_pad_cond_uncond_appends_empty_chunks_and_runs_one_call():
    calls = []
    cond = Conditioning(torch.full((1, 154, 4), 3.0))
    uncond = fake_conditioning([1.0])
    empty = torch.full((1, 77, 4), 9.0)
    denoiser = CFGDenoiser(marker_model(calls), cond, uncond, 2.0, total_steps=1, empty_chunk=empty)
    denoiser(torch.zeros(1, 4, 8, 8), torch.tensor([1.0]))
    assert len(calls) == 1 and calls[0].shape == (2, 154, 4)
    assert torch.equal(calls[0][1, :77], uncond.cross_attention[0]) and torch.equal(calls[0][1, 77:], empty[0])


def test_count_tokens_takes_the_longest_variant(sd1):
    assert count_tokens("a cat", sd1) == (2, 75)
    assert count_tokens(f"[cat:{words(80, 'dog')}:3]", sd1, steps=10) == (80, 150)
    assert count_tokens(f"cat AND {words(76, 'dog')}", sd1) == (76, 150)


# ---- end to end -----------------------------------------------------------------------------------------
def generate(app_context, **fields):
    values = {"prompt": "a cat", "steps": 4, "width": 64, "height": 64, "seed": 7, "sampler_name": "Euler", "cfg_scale": 5.0}
    values.update(fields)
    return app_context.run_txt2img(Txt2ImgParams.from_request(values))


def test_txt2img_with_prompt_editing_and_and_and_emphasis_setting(app_context):
    cat = np.asarray(generate(app_context, prompt="a cat").images[0], dtype=np.float32)
    dog = np.asarray(generate(app_context, prompt="a dog").images[0], dtype=np.float32)
    edited = np.asarray(generate(app_context, prompt="a [cat:dog:1]").images[0], dtype=np.float32)
    assert not np.array_equal(edited, cat) and not np.array_equal(edited, dog)
    composed = generate(app_context, prompt="a cat AND a dog :0.5", batch_size=2)
    assert len(composed.images) == 3  # grid + 2
    no_norm = generate(app_context, prompt="a (cat:1.4)", override_settings={"emphasis": "No norm"})
    assert parse_infotext(no_norm.infotexts[0])["Emphasis"] == "No norm"
    assert "Emphasis" not in parse_infotext(generate(app_context).infotexts[0])
