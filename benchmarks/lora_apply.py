"""LoRA speed: time to merge and to remove one and five LoRA files, and the UNet step time with and
without a merged LoRA (merged weights should cost nothing per step).

CPU (default): the tiny SD1/SDXL checkpoints through the real loader, with random kohya LoRA/LoCon
files (rank 4, every attention, feed-forward and resnet conv layer, both text encoders).

    venv/bin/python benchmarks/lora_apply.py --family sd1
    venv/bin/python benchmarks/lora_apply.py --family sdxl

CUDA: full-size random weights in fp16 (same LoRA layout, full-size layers):

    python benchmarks/lora_apply.py --family sd1 --full-size
    python benchmarks/lora_apply.py --family sdxl --full-size
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from modules.models.loader import load_checkpoint  # noqa: E402
from modules.networks.apply import NetworkApplier, NetworkRequest  # noqa: E402
from modules.networks.tiny_networks import build_tiny_network, write_network  # noqa: E402


def checkpoint_for(family: str, full_size: bool, device: torch.device, dtype: torch.dtype):
    if full_size:
        from txt2img_vs_diffusers import full_size_checkpoint

        return full_size_checkpoint(family, device, dtype)
    from modules.tiny_checkpoint import build_tiny_checkpoint

    path = Path(tempfile.mkdtemp()) / f"tiny-{family}.safetensors"
    build_tiny_checkpoint(family, path, seed=0)
    return load_checkpoint(path, device=device, dtype=dtype)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(function, device: torch.device) -> float:
    synchronize(device)
    start = time.perf_counter()
    function()
    synchronize(device)
    return time.perf_counter() - start


def step_time(checkpoint, device: torch.device, runs: int) -> float:
    """Best UNet forward time (batch 2, cond + uncond) at 64x64 latents (8x8 for the tiny models)."""
    unet = checkpoint.unet
    side = 8 if checkpoint.path.name.startswith("tiny") else 64
    sample = torch.randn(2, 4, side, side, device=device, dtype=checkpoint.dtype)
    width = unet.config.cross_attention_dim
    context = torch.randn(2, 77, width, device=device, dtype=checkpoint.dtype)
    added = None
    if checkpoint.family == "sdxl":
        pooled = checkpoint.text_encoders[-1].config.projection_dim
        added = {
            "text_embeds": torch.randn(2, pooled, device=device, dtype=checkpoint.dtype),
            "time_ids": torch.zeros(2, 6, device=device, dtype=checkpoint.dtype),
        }
    timestep = torch.tensor([500.0, 500.0], device=device)

    def forward() -> None:
        with torch.inference_mode():
            unet(sample, timestep, encoder_hidden_states=context, added_cond_kwargs=added, return_dict=False)

    forward()
    return min(timed(forward, device) for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=["sd1", "sdxl"], default="sd1")
    parser.add_argument("--full-size", action="store_true", help="full-size random weights (CUDA, fp16)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    checkpoint = checkpoint_for(args.family, args.full_size, device, dtype)
    folder = Path(tempfile.mkdtemp())
    files = []
    for index in range(5):
        tensors = build_tiny_network(checkpoint, "lora", seed=index + 1, strength=0.01)  # made on the CPU
        files.append(write_network(tensors, folder / f"lora{index}.safetensors"))
    results: dict[str, object] = {
        "family": args.family,
        "size": "full" if args.full_size else "tiny",
        "device": torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "lora_file_mb": round(files[0].stat().st_size / 1e6, 2),
    }
    for count in (1, 5):
        requests = [NetworkRequest(f"lora{index}", path) for index, path in enumerate(files[:count])]
        cold, warm, remove = [], [], []
        for _ in range(args.runs):
            applier = NetworkApplier(checkpoint.unet, list(checkpoint.text_encoders))
            cold.append(timed(lambda applier=applier, requests=requests: applier.apply(requests), device))
            remove.append(timed(lambda applier=applier: applier.apply([]), device))
            warm.append(timed(lambda applier=applier, requests=requests: applier.apply(requests), device))
            applier.apply([])
        results[f"apply_{count}_with_file_read_ms"] = round(min(cold) * 1000, 2)
        results[f"apply_{count}_cached_ms"] = round(min(warm) * 1000, 2)
        results[f"remove_{count}_ms"] = round(min(remove) * 1000, 2)
    applier = NetworkApplier(checkpoint.unet, list(checkpoint.text_encoders))
    plain, merged = [], []
    for _ in range(args.runs):  # interleaved, best of each
        applier.apply([])
        plain.append(step_time(checkpoint, device, 3))
        applier.apply([NetworkRequest("lora0", files[0])])
        merged.append(step_time(checkpoint, device, 3))
    applier.apply([])
    plain, merged = min(plain), min(merged)
    results["unet_step_ms_without"] = round(plain * 1000, 3)
    results["unet_step_ms_with_merged_lora"] = round(merged * 1000, 3)
    results["per_step_overhead"] = f"{(merged / plain - 1) * 100:+.1f}%"
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
