"""LoRA-family networks on tiny real checkpoints: tags, every file format, exact apply and restore."""

from __future__ import annotations

import pytest
import torch

from modules.models.loader import load_checkpoint
from modules.networks.apply import NetworkApplier, NetworkRequest
from modules.networks.formats import module_table
from modules.networks.tags import NetworkTag, TagError, extract_tags, strip_prompts
from modules.networks.tiny_networks import ALPHA, RANK, build_tiny_network, write_network

CPU = torch.device("cpu")


# ---- tags -----------------------------------------------------------------------------------------
def test_tags_positional_named_and_defaults():
    text, tags = extract_tags("a cat <lora:one:0.5> and <lyco:two:0.3:0.7> <lora:three:te=0.2:unet=0.9:dyn=8> <hypernet:h:0.4>")
    assert text == "a cat  and   "
    assert tags == [
        NetworkTag("lora", "one", 0.5, 0.5),
        NetworkTag("lyco", "two", 0.3, 0.7),
        NetworkTag("lora", "three", 0.2, 0.9, 8),
        NetworkTag("hypernet", "h", 0.4, 0.4),
    ]
    assert extract_tags("<lora:plain>")[1] == [NetworkTag("lora", "plain", 1.0, 1.0)]
    assert extract_tags("<lora:unet_only:unet=0.5>")[1] == [NetworkTag("lora", "unet_only", 1.0, 0.5)]


def test_other_angle_tags_stay_and_only_the_first_prompt_counts():
    assert extract_tags("x <other:thing> y")[0] == "x <other:thing> y"
    stripped, tags = strip_prompts(["a <lora:first:1>", "b <lora:second:1>"])
    assert stripped == ["a ", "b "]
    assert [tag.name for tag in tags] == ["first"]


@pytest.mark.parametrize("bad", ["<lora:x:abc>", "<lora:x:1:2:3:4>", "<lora:x:foo=1>", "<lora::1>", "<lora:x:1:1:z>"])
def test_unreadable_tags_name_the_tag(bad):
    with pytest.raises(TagError, match="lora:"):
        extract_tags(bad)


# ---- tiny models ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sd1(tiny_sd1_path):
    return load_checkpoint(tiny_sd1_path, device=CPU, dtype=torch.float32)


@pytest.fixture(scope="module")
def sdxl(tiny_sdxl_path):
    return load_checkpoint(tiny_sdxl_path, device=CPU, dtype=torch.float32)


def snapshot(checkpoint) -> dict[str, torch.Tensor]:
    models = {"unet": checkpoint.unet, **{f"te{i + 1}": model for i, model in enumerate(checkpoint.text_encoders)}}
    return {f"{part}.{key}": value.clone() for part, model in models.items() for key, value in model.state_dict().items()}


def changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> set[str]:
    return {key for key in before if not torch.equal(before[key], after[key])}


def network_file(tmp_path, checkpoint, kind="lora", name="net", **options):
    return write_network(build_tiny_network(checkpoint, kind, **options), tmp_path / f"{name}.safetensors")


def test_kohya_lora_applies_linear_and_conv_and_restores_bit_exactly(sd1, tmp_path):
    path = network_file(tmp_path, sd1)
    applier = NetworkApplier(sd1.unet, sd1.text_encoders)
    before = snapshot(sd1)
    report = applier.apply([NetworkRequest("net", path)])
    assert report.applied == ["net"] and not report.skipped
    after = snapshot(sd1)
    touched = changed(before, after)
    assert any(key.startswith("te1.") and key.endswith("q_proj.weight") for key in touched)
    assert any(".resnets." in key and key.endswith("conv1.weight") for key in touched)  # conv (LoCon)
    assert any("attn2.to_k.weight" in key for key in touched)
    assert all(key.endswith(".weight") for key in touched)  # biases and norms untouched
    assert report.layers == len(touched)

    # the linear delta is up @ down * alpha / rank
    tensors = build_tiny_network(sd1, "lora")
    key = "lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_q"
    expected = tensors[f"{key}.lora_up.weight"].float() @ tensors[f"{key}.lora_down.weight"].float() * (ALPHA / RANK)
    name = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight"
    assert torch.allclose(after[name] - before[name], expected, atol=1e-5)

    # the same set again is a no-op; an empty set restores every weight exactly
    assert applier.apply([NetworkRequest("net", path)]).applied == ["net"]
    assert not changed(after, snapshot(sd1))
    applier.apply([])
    assert not changed(before, snapshot(sd1))


def test_weight_zero_and_te_or_unet_only(sd1, tmp_path):
    path = network_file(tmp_path, sd1)
    applier = NetworkApplier(sd1.unet, sd1.text_encoders)
    before = snapshot(sd1)
    applier.apply([NetworkRequest("net", path, 0.0, 0.0)])
    assert not changed(before, snapshot(sd1))
    applier.apply([NetworkRequest("net", path, 1.0, 0.0)])
    touched = changed(before, snapshot(sd1))
    assert touched and all(key.startswith("te1.") for key in touched)
    applier.apply([NetworkRequest("net", path, 0.0, 1.0)])
    touched = changed(before, snapshot(sd1))
    assert touched and all(key.startswith("unet.") for key in touched)
    applier.apply([])
    assert not changed(before, snapshot(sd1))


def test_diffusers_names_and_peft_keys_give_the_same_weights_as_kohya(sd1, tmp_path):
    applier = NetworkApplier(sd1.unet, sd1.text_encoders)
    results = []
    for kind in ("lora", "lora-diffusers-names", "peft"):
        applier.apply([NetworkRequest(kind, network_file(tmp_path, sd1, kind, name=kind))])
        results.append(snapshot(sd1))
        assert not applier.report.skipped, applier.report.skipped
    applier.apply([])
    assert not changed(results[0], results[1])
    assert not changed(results[0], results[2])


@pytest.mark.parametrize("kind", ["loha", "lokr", "ia3", "dora"])
def test_lycoris_formats_apply_and_restore(sd1, tmp_path, kind):
    path = network_file(tmp_path, sd1, kind, name=kind)
    applier = NetworkApplier(sd1.unet, sd1.text_encoders)
    before = snapshot(sd1)
    report = applier.apply([NetworkRequest(kind, path)])
    assert report.applied == [kind], report.skipped
    touched = changed(before, snapshot(sd1))
    assert any(key.startswith("unet.") for key in touched) and any(key.startswith("te1.") for key in touched)
    applier.apply([])
    assert not changed(before, snapshot(sd1))


def test_loha_delta_is_the_hadamard_product(sd1, tmp_path):
    tensors = build_tiny_network(sd1, "loha")
    path = write_network(tensors, tmp_path / "loha.safetensors")
    applier = NetworkApplier(sd1.unet, sd1.text_encoders)
    name = "encoder.layers.0.self_attn.q_proj"
    before = sd1.text_encoders[0].get_submodule(name).weight.clone()
    applier.apply([NetworkRequest("loha", path)])
    after = sd1.text_encoders[0].get_submodule(name).weight.clone()
    applier.apply([])
    prefix = "lora_te_text_model_" + name.replace(".", "_") + "."
    w = {key: tensors[prefix + key].float() for key in ("hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b")}
    expected = (w["hada_w1_a"] @ w["hada_w1_b"]) * (w["hada_w2_a"] @ w["hada_w2_b"]) * (ALPHA / RANK)
    assert torch.allclose(after - before, expected, atol=1e-5)


def test_dora_renormalises_to_the_stored_magnitude(sd1, tmp_path):
    tensors = build_tiny_network(sd1, "dora", parts=("te",))
    path = write_network(tensors, tmp_path / "dora.safetensors")
    applier = NetworkApplier(sd1.unet, sd1.text_encoders)
    name = "encoder.layers.1.mlp.fc1"
    applier.apply([NetworkRequest("dora", path)])
    weight = sd1.text_encoders[0].get_submodule(name).weight.detach().clone()
    applier.apply([])
    magnitude = tensors["lora_te_text_model_" + name.replace(".", "_") + ".dora_scale"].float().flatten()
    assert torch.allclose(weight.norm(dim=1), magnitude, rtol=1e-3)


def test_sdxl_te1_te2_and_unet(sdxl, tmp_path):
    path = network_file(tmp_path, sdxl, name="xl")
    assert any(key.startswith("lora_te2_") for key in build_tiny_network(sdxl, "lora"))
    applier = NetworkApplier(sdxl.unet, sdxl.text_encoders)
    before = snapshot(sdxl)
    report = applier.apply([NetworkRequest("xl", path)])
    assert report.applied == ["xl"], report.skipped
    touched = changed(before, snapshot(sdxl))
    assert {key.split(".")[0] for key in touched} == {"unet", "te1", "te2"}
    applier.apply([])
    assert not changed(before, snapshot(sdxl))


def test_a_file_for_another_model_is_skipped_with_a_reason(sd1, sdxl, tmp_path):
    applier = NetworkApplier(sd1.unet, sd1.text_encoders)
    before = snapshot(sd1)
    wrong = network_file(tmp_path, sdxl, name="for_sdxl")
    junk = write_network({"something.else": torch.zeros(3)}, tmp_path / "junk.safetensors")
    good = network_file(tmp_path, sd1, name="good", parts=("te",))
    report = applier.apply([NetworkRequest("for_sdxl", wrong), NetworkRequest("junk", junk), NetworkRequest("good", good)])
    assert report.applied == ["good"]
    assert "does not fit" in report.skipped["for_sdxl"]
    assert "no layer of the file matches" in report.skipped["junk"]
    assert all(key.startswith("te1.") for key in changed(before, snapshot(sd1)))
    applier.apply([])
    assert not changed(before, snapshot(sd1))


def test_module_table_knows_original_and_diffusers_unet_names(sd1):
    tables = module_table(sd1.unet, sd1.text_encoders)
    target = "down_blocks.0.attentions.0.proj_in"
    assert tables["unet"]["input_blocks_1_1_proj_in"] == target
    assert tables["unet"]["down_blocks_0_attentions_0_proj_in"] == target
    assert tables["unet"]["output_blocks_2_1_conv"] == "up_blocks.0.upsamplers.0.conv"
    assert tables["te1"]["text_model_encoder_layers_0_self_attn_q_proj"] == "encoder.layers.0.self_attn.q_proj"


def test_sd2_openclip_text_encoder_and_unet(tiny_sd2_path, tmp_path):
    sd2 = load_checkpoint(tiny_sd2_path, device=CPU, dtype=torch.float32)
    path = network_file(tmp_path, sd2, name="sd2")
    assert any(key.startswith("lora_te_text_model_encoder_layers_") for key in build_tiny_network(sd2, "lora"))
    applier = NetworkApplier(sd2.unet, sd2.text_encoders)
    before = snapshot(sd2)
    report = applier.apply([NetworkRequest("sd2", path)])
    assert report.applied == ["sd2"], report.skipped
    assert {key.split(".")[0] for key in changed(before, snapshot(sd2))} == {"unet", "te1"}
    applier.apply([])
    assert not changed(before, snapshot(sd2))


def test_dyn_keeps_the_first_ranks(sd1, tmp_path):
    tensors = build_tiny_network(sd1, "lora", parts=("te",))
    path = write_network(tensors, tmp_path / "dyn.safetensors")
    applier = NetworkApplier(sd1.unet, sd1.text_encoders)
    name = "encoder.layers.0.self_attn.k_proj"
    before = sd1.text_encoders[0].get_submodule(name).weight.clone()
    applier.apply([NetworkRequest("dyn", path, dyn_dim=2)])
    after = sd1.text_encoders[0].get_submodule(name).weight.clone()
    applier.apply([])
    prefix = "lora_te_text_model_" + name.replace(".", "_") + "."
    up, down = tensors[prefix + "lora_up.weight"].float()[:, :2], tensors[prefix + "lora_down.weight"].float()[:2]
    assert torch.allclose(after - before, up @ down * (ALPHA / 2), atol=1e-5)


def test_tiny_lora_command_fits_the_tiny_checkpoint_of_the_same_seed(sdxl, tmp_path):
    from modules.tiny_checkpoint import main

    out = tmp_path / "cli-xl.safetensors"
    main(["--arch", "sdxl-lora", "--out", str(out)])
    applier = NetworkApplier(sdxl.unet, sdxl.text_encoders)
    before = snapshot(sdxl)
    report = applier.apply([NetworkRequest("cli", out)])
    assert report.applied == ["cli"] and report.layers > 50, report.skipped
    assert {key.split(".")[0] for key in changed(before, snapshot(sdxl))} == {"unet", "te1", "te2"}
    applier.apply([])
    assert not changed(before, snapshot(sdxl))


def test_peft_dora_magnitude_matches_kohya_dora(sd1, tmp_path):
    kohya = build_tiny_network(sd1, "dora", parts=("te",))
    peft = build_tiny_network(sd1, "peft", parts=("te",))
    for key, value in kohya.items():
        if key.endswith(".dora_scale"):
            module = key.removeprefix("lora_te_text_model_").removesuffix(".dora_scale")
            matches = [
                name for name in peft if name.endswith(".lora_A.weight") and name.replace(".", "_").endswith(module + "_lora_A_weight")
            ]
            peft[matches[0].replace(".lora_A.weight", ".lora_magnitude_vector")] = value.flatten()
    applier = NetworkApplier(sd1.unet, sd1.text_encoders)
    applier.apply([NetworkRequest("kohya", write_network(kohya, tmp_path / "kohya.safetensors"))])
    from_kohya = snapshot(sd1)
    applier.apply([NetworkRequest("peft", write_network(peft, tmp_path / "peft.safetensors"))])
    from_peft = snapshot(sd1)
    applier.apply([])
    assert not changed(from_kohya, from_peft)


def test_tucker_loha_and_lokr_on_a_conv_layer(sd1, tmp_path):
    name = "down_blocks.0.resnets.0.conv1"
    weight = sd1.unet.get_submodule(name).weight
    out_features, in_features = weight.shape[:2]
    generator = torch.Generator().manual_seed(5)
    rank = 3

    def diagonal_core() -> tuple[torch.Tensor, torch.Tensor]:
        kernels = torch.randn(rank, 3, 3, generator=generator)
        core = torch.zeros(rank, rank, 3, 3)
        for index in range(rank):
            core[index, index] = kernels[index]
        return core, kernels

    def expected_factor(a, b, kernels):  # sum over ranks of outer(a_i, b_i) x kernel_i
        return sum(torch.outer(a[index], b[index])[:, :, None, None] * kernels[index] for index in range(rank))

    (t1, k1), (t2, k2) = diagonal_core(), diagonal_core()
    a1, b1 = torch.randn(rank, out_features, generator=generator), torch.randn(rank, in_features, generator=generator)
    a2, b2 = torch.randn(rank, out_features, generator=generator), torch.randn(rank, in_features, generator=generator)
    key = "lora_unet_input_blocks_1_0_in_layers_2"
    loha = {f"{key}.hada_t1": t1, f"{key}.hada_w1_a": a1, f"{key}.hada_w1_b": b1, f"{key}.hada_t2": t2}
    loha.update({f"{key}.hada_w2_a": a2, f"{key}.hada_w2_b": b2, f"{key}.alpha": torch.tensor(float(rank))})
    applier = NetworkApplier(sd1.unet, sd1.text_encoders)
    before = weight.detach().clone()
    applier.apply([NetworkRequest("tucker-loha", write_network(loha, tmp_path / "tl.safetensors"))])
    loha_delta = weight.detach() - before
    applier.apply([])
    expected = expected_factor(a1, b1, k1) * expected_factor(a2, b2, k2)
    assert torch.allclose(loha_delta, expected, atol=1e-3, rtol=1e-3)

    # LoKr: a full (2, 2) w1 times a Tucker w2 of the remaining (out/2, in/2, 3, 3)
    w1 = torch.randn(2, 2, generator=generator)
    core, kernels = diagonal_core()
    a, b = torch.randn(rank, out_features // 2, generator=generator), torch.randn(rank, in_features // 2, generator=generator)
    lokr = {
        f"{key}.lokr_w1": w1,
        f"{key}.lokr_t2": core,
        f"{key}.lokr_w2_a": a,
        f"{key}.lokr_w2_b": b,
        f"{key}.alpha": torch.tensor(float(rank)),
    }
    applier.apply([NetworkRequest("tucker-lokr", write_network(lokr, tmp_path / "tk.safetensors"))])
    lokr_delta = weight.detach() - before
    applier.apply([])
    assert torch.allclose(lokr_delta, torch.kron(w1[:, :, None, None], expected_factor(a, b, kernels)), atol=1e-3, rtol=1e-3)
    assert torch.equal(weight.detach(), before)
