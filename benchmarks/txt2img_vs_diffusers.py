"""txt2img speed: our pipeline against plain diffusers `StableDiffusionPipeline` on the same weights,
measured in one run on one machine, reported as a ratio (ours / diffusers, higher is better).

CPU (default): the tiny SD1 checkpoint through our real single-file loader; the difference is our
per-request overhead (prompt encoding, RNG, sampler loop, hooks, decode).

    venv/bin/python benchmarks/txt2img_vs_diffusers.py --size 256 --steps 20 --runs 3

CUDA: full-size random weights (SD1.5 or SDXL architecture from configs/models/) in fp16:

    python benchmarks/txt2img_vs_diffusers.py --full-size sd1 --size 512 --steps 20 --runs 3
    python benchmarks/txt2img_vs_diffusers.py --full-size sdxl --size 1024 --steps 20 --runs 3
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from modules.app.jobs import Job  # noqa: E402
from modules.app.options import Options  # noqa: E402
from modules.generation.params import Txt2ImgParams  # noqa: E402
from modules.generation.txt2img import GenerationContext, txt2img  # noqa: E402
from modules.models.engine import DiffusionEngine  # noqa: E402
from modules.models.loader import LoadedCheckpoint, load_checkpoint  # noqa: E402


def tiny_checkpoint(device: torch.device, dtype: torch.dtype) -> LoadedCheckpoint:
    from modules.tiny_checkpoint import build_tiny_checkpoint

    path = Path(tempfile.mkdtemp()) / "tiny-sd1.safetensors"
    build_tiny_checkpoint("sd1", path, seed=0)
    return load_checkpoint(path, device=device, dtype=dtype)


def full_size_checkpoint(family: str, device: torch.device, dtype: torch.dtype) -> LoadedCheckpoint:
    """Random weights with the real architecture, built directly as diffusers components."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from modules.models.families import family_config
    from modules.models.loader import load_tokenizer, scaled_linear_alphas_cumprod

    config = family_config(family)
    with torch.device(device):
        unet = UNet2DConditionModel.from_config(config["unet"]).to(dtype)
        vae = AutoencoderKL.from_config(config["vae"]).to(dtype)
        encoders, tokenizers = [], []
        for spec in config["text_encoders"]:
            text_config = CLIPTextConfig(**spec["config"])
            model_class = CLIPTextModelWithProjection if spec["class"] == "CLIPTextModelWithProjection" else CLIPTextModel
            encoders.append(model_class(text_config).to(dtype))
            tokenizers.append(load_tokenizer(spec["tokenizer"]))
    for module in [unet, vae, *encoders]:
        module.eval().requires_grad_(False)
    return LoadedCheckpoint(
        path=Path(f"random-{family}"),
        family=family,
        prediction_type="epsilon",
        unet=unet,
        vae=vae,
        vae_scaling_factor=0.13025 if family == "sdxl" else 0.18215,
        text_encoders=encoders,
        tokenizers=tokenizers,
        alphas_cumprod=scaled_linear_alphas_cumprod(),
        unet_in_channels=4,
        dtype=dtype,
        device=device,
    )


def diffusers_pipeline(checkpoint: LoadedCheckpoint):
    from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline

    scheduler = EulerAncestralDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", timestep_spacing="leading", steps_offset=1
    )
    if checkpoint.family == "sdxl":
        return StableDiffusionXLPipeline(
            vae=checkpoint.vae,
            text_encoder=checkpoint.text_encoders[0],
            text_encoder_2=checkpoint.text_encoders[1],
            tokenizer=checkpoint.tokenizers[0],
            tokenizer_2=checkpoint.tokenizers[1],
            unet=checkpoint.unet,
            scheduler=scheduler,
        )
    return StableDiffusionPipeline(
        vae=checkpoint.vae,
        text_encoder=checkpoint.text_encoders[0],
        tokenizer=checkpoint.tokenizers[0],
        unet=checkpoint.unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(functions: dict[str, object], runs: int, device: torch.device) -> dict[str, tuple[float, float]]:
    """Best wall time of `runs` calls of each function, interleaved so that both see the same machine
    state, after one warm-up each; plus peak CUDA memory in GiB (0 on CPU)."""
    best = {name: float("inf") for name in functions}
    peak = dict.fromkeys(functions, 0.0)
    for function in functions.values():
        function()
    for _ in range(runs):
        for name, function in functions.items():
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            synchronize(device)
            began = time.perf_counter()
            function()
            synchronize(device)
            best[name] = min(best[name], time.perf_counter() - began)
            if device.type == "cuda":
                peak[name] = max(peak[name], torch.cuda.max_memory_allocated() / 2**30)
    return {name: (best[name], peak[name]) for name in functions}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full-size", choices=["sd1", "sdxl"], help="full-size random weights (CUDA)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    checkpoint = full_size_checkpoint(args.full_size, device, dtype) if args.full_size else tiny_checkpoint(device, dtype)
    engine = DiffusionEngine(checkpoint)
    options = Options()
    options.set("samples_save", False)
    context = GenerationContext(engine=engine, options=options, outputs_root=Path(tempfile.mkdtemp()), model_name="bench", model_hash=None)
    params = Txt2ImgParams(
        prompt="a photo of a cat",
        negative_prompt="",
        steps=args.steps,
        sampler_name="Euler a",
        cfg_scale=7.0,
        width=args.size,
        height=args.size,
        seed=1,
        do_not_save_samples=True,
    )
    pipeline = diffusers_pipeline(checkpoint)
    pipeline.set_progress_bar_config(disable=True)

    def ours() -> None:
        txt2img(params, context, Job(id="bench"))

    def theirs() -> None:
        generator = torch.Generator(device).manual_seed(1)
        pipeline(
            prompt="a photo of a cat",
            negative_prompt="",
            num_inference_steps=args.steps,
            guidance_scale=7.0,
            width=args.size,
            height=args.size,
            generator=generator,
            output_type="pil",
        )

    with torch.inference_mode():
        timings = measure({"ours": ours, "diffusers": theirs}, args.runs, device)
    (ours_time, ours_peak), (theirs_time, theirs_peak) = timings["ours"], timings["diffusers"]
    result = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()} {torch.cuda.get_device_name() if device.type == 'cuda' else platform.processor() or 'cpu'}, torch {torch.__version__}",
        "model": args.full_size or "tiny-sd1",
        "size": args.size,
        "steps": args.steps,
        "sampler": "Euler a",
        "ours_it_s": args.steps / ours_time,
        "diffusers_it_s": args.steps / theirs_time,
        "ratio": theirs_time / ours_time,
        "ours_peak_gib": ours_peak,
        "diffusers_peak_gib": theirs_peak,
        "command": " ".join(sys.argv),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
