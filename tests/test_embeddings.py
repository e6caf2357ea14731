"""Textual inversion: embedding files built here in every supported format, loaded by the real
scanner and used by the real encoders of the tiny models."""

import hashlib

import pytest
import torch
from safetensors.torch import save_file

from modules.generation.params import Txt2ImgParams
from modules.imaging.infotext import parse_infotext
from modules.models.engine import DiffusionEngine
from modules.models.loader import load_checkpoint
from modules.prompting.chunks import PromptTokenizer, count_tokens
from modules.prompting.embeddings import EmbeddingDatabase

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def sd1(tiny_sd1_path):
    return DiffusionEngine(load_checkpoint(tiny_sd1_path, device=CPU, dtype=torch.float32))


@pytest.fixture(scope="module")
def sdxl(tiny_sdxl_path):
    return DiffusionEngine(load_checkpoint(tiny_sdxl_path, device=CPU, dtype=torch.float32))


def word_vectors(engine, text, encoder_index=0):
    """The token-embedding rows of `text`: an embedding made of them must encode exactly like it."""
    tokenizer = engine.checkpoint.tokenizers[encoder_index]
    ids = tokenizer([text], add_special_tokens=False)["input_ids"][0]
    encoder = engine.checkpoint.text_encoders[encoder_index]
    table = getattr(encoder, "text_model", encoder).embeddings.token_embedding.weight
    return table[ids].detach().clone()


def attach(engine, folder):
    database = EmbeddingDatabase(folder)
    engine.use_embeddings(database)
    return database


def encode(engine, text):
    return engine.encode_prompts([text]).cross_attention


def test_a1111_pt_embedding_changes_the_conditioning_by_exactly_its_vectors(sd1, tmp_path):
    vectors = word_vectors(sd1, "red cat")
    torch.save({"string_to_param": {"*": vectors}, "name": "ignored", "step": 100}, tmp_path / "crimsonfeline.pt")
    database = attach(sd1, tmp_path)
    try:
        assert set(database.loaded) == {"crimsonfeline"} and database.skipped == {}
        assert torch.equal(encode(sd1, "a photo of crimsonfeline"), encode(sd1, "a photo of red cat"))
        assert count_tokens("a crimsonfeline", sd1) == (3, 75)  # "a" + two vectors
        embedding = database.loaded["crimsonfeline"]
        digest = hashlib.sha256((tmp_path / "crimsonfeline.pt").read_bytes()).hexdigest()
        assert embedding.hash == digest and embedding.shorthash == digest[:12]
        width = sd1.prompt_encoder.encoder_widths()[0]
        described = database.describe()["loaded"]["crimsonfeline"]
        assert described == {"step": 100, "sd_checkpoint": None, "sd_checkpoint_name": None, "shape": width, "vectors": 2}
    finally:
        attach(sd1, None)


def test_diffusers_and_emb_params_formats_in_subfolders(sd1, tmp_path):
    width = sd1.prompt_encoder.encoder_widths()[0]
    (tmp_path / "nested" / "deeper").mkdir(parents=True)
    torch.save({"<concept>": torch.randn(width)}, tmp_path / "nested" / "diffconcept.bin")
    save_file({"emb_params": torch.randn(3, width)}, tmp_path / "nested" / "deeper" / "kohyastyle.safetensors")
    database = attach(sd1, tmp_path)
    try:
        assert set(database.loaded) == {"diffconcept", "kohyastyle"}
        assert database.loaded["kohyastyle"].vector_count == 3
        assert not torch.allclose(encode(sd1, "a diffconcept"), encode(sd1, "a"))
        assert count_tokens("kohyastyle", sd1) == (3, 75)
    finally:
        attach(sd1, None)


def test_embeddings_that_do_not_fit_are_skipped_with_the_reason(sd1, tmp_path):
    width = sd1.prompt_encoder.encoder_widths()[0]
    torch.save({"string_to_param": {"*": torch.randn(2, width + 8)}}, tmp_path / "widerone.pt")
    save_file({"clip_l": torch.randn(1, 8), "clip_g": torch.randn(1, 16)}, tmp_path / "xlonly.safetensors")
    (tmp_path / "emptyfile.pt").write_bytes(b"")
    (tmp_path / "garbage.safetensors").write_bytes(b"not a safetensors file at all")

    class Payload:
        def __reduce__(self):
            return (print, ("never",))

    torch.save({"string_to_param": Payload()}, tmp_path / "code.pt")
    save_file({"a": torch.randn(1, width), "b": torch.randn(1, width)}, tmp_path / "twotensors.safetensors")
    database = attach(sd1, tmp_path)
    try:
        assert database.loaded == {}
        assert set(database.skipped) == {"widerone", "xlonly", "emptyfile", "garbage", "code", "twotensors"}
        assert f"{width + 8} wide; this model needs {width}" in database.skipped["widerone"]
        assert "SDXL" in database.skipped["xlonly"]
        assert "empty" in database.skipped["emptyfile"]
        assert "refused" in database.skipped["code"]
        assert "unrecognised" in database.skipped["twotensors"]
        assert database.describe() == {"loaded": {}, "skipped": {name: {"reason": reason} for name, reason in database.skipped.items()}}
        # a skipped name stays plain text: its BPE tokens, not two vectors
        plain_tokens = len(sd1.checkpoint.tokenizers[0](["widerone"], add_special_tokens=False)["input_ids"][0])
        assert count_tokens("widerone", sd1) == (plain_tokens, 75)
    finally:
        attach(sd1, None)


def test_rescan_when_the_folder_changes(sd1, tmp_path):
    width = sd1.prompt_encoder.encoder_widths()[0]
    database = attach(sd1, tmp_path)
    try:
        assert database.loaded == {}
        torch.save({"string_to_param": {"*": torch.randn(1, width)}}, tmp_path / "lateone.pt")
        assert database.needs_reload(sd1.prompt_encoder.encoder_widths())
        sd1.reload_embeddings()
        assert set(database.loaded) == {"lateone"}
        assert not database.needs_reload(sd1.prompt_encoder.encoder_widths())
    finally:
        attach(sd1, None)


def test_embedding_never_straddles_a_chunk(sd1, tmp_path):
    torch.save({"string_to_param": {"*": word_vectors(sd1, "red cat dog")}}, tmp_path / "threevec.pt")
    database = attach(sd1, tmp_path)
    try:
        chunker = PromptTokenizer(sd1.checkpoint.tokenizers[0], embeddings=database)
        chunks, count = chunker.chunk_line(" ".join(["cat"] * 74) + " threevec")
        assert len(chunks) == 2
        assert chunks[1].fixes[0][0] == 0 and chunks[0].fixes == []
        assert count == 75 + 3
    finally:
        attach(sd1, None)


def test_sdxl_clip_l_clip_g_embedding(sdxl, tmp_path):
    save_file(
        {"clip_l": word_vectors(sdxl, "red cat", 0), "clip_g": word_vectors(sdxl, "red cat", 1)},
        tmp_path / "xlfeline.safetensors",
    )
    torch.save({"string_to_param": {"*": torch.randn(1, 8)}}, tmp_path / "sd1style.pt")
    database = attach(sdxl, tmp_path)
    try:
        assert set(database.loaded) == {"xlfeline"}
        assert "one encoder" in database.skipped["sd1style"]
        with_embedding = sdxl.encode_prompts(["a xlfeline"])
        plain = sdxl.encode_prompts(["a red cat"])
        assert torch.equal(with_embedding.cross_attention, plain.cross_attention)
        assert torch.equal(with_embedding.pooled, plain.pooled)
    finally:
        attach(sdxl, None)


def test_ti_hashes_in_infotext(app_context):
    folder = app_context.paths.embeddings_dir
    folder.mkdir(parents=True, exist_ok=True)
    engine = app_context.models.require()
    path = folder / "tizqxstyle.pt"
    torch.save({"string_to_param": {"*": torch.randn(2, engine.prompt_encoder.encoder_widths()[0])}}, path)
    try:
        values = {"prompt": "a tizqxstyle", "steps": 2, "width": 64, "height": 64, "seed": 3, "sampler_name": "Euler"}
        processed = app_context.run_txt2img(Txt2ImgParams.from_request(values))
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        assert parse_infotext(processed.infotexts[0])["TI hashes"] == f"tizqxstyle: {digest}"
        plain = app_context.run_txt2img(Txt2ImgParams.from_request({**values, "prompt": "a cat"}))
        assert "TI hashes" not in parse_infotext(plain.infotexts[0])
    finally:
        path.unlink()
        app_context.refresh_embeddings()
