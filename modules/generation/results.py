"""What a generation returns (A1111's `Processed`), in a form both the UI and the API can use."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image


@dataclass
class Processed:
    """Images with their infotexts; `js()` is the JSON string A1111 returns as `info`."""

    images: list[Image.Image]
    infotexts: list[str]
    prompt: str
    negative_prompt: str
    seed: int
    subseed: int
    all_prompts: list[str]
    all_negative_prompts: list[str]
    all_seeds: list[int]
    all_subseeds: list[int]
    parameters: dict[str, Any]
    index_of_first_image: int = 0
    saved_paths: list[Path] = field(default_factory=list)
    interrupted: bool = False
    comments: list[str] = field(default_factory=list)

    @property
    def info(self) -> str:
        return self.infotexts[self.index_of_first_image] if self.infotexts else ""

    def js(self) -> str:
        """A1111's `info` JSON: request values plus per-image seeds, prompts and infotexts."""
        data = {
            "prompt": self.prompt,
            "all_prompts": self.all_prompts,
            "negative_prompt": self.negative_prompt,
            "all_negative_prompts": self.all_negative_prompts,
            "seed": self.seed,
            "all_seeds": self.all_seeds,
            "subseed": self.subseed,
            "all_subseeds": self.all_subseeds,
            "subseed_strength": self.parameters.get("subseed_strength", 0),
            "width": self.parameters.get("width"),
            "height": self.parameters.get("height"),
            "sampler_name": self.parameters.get("sampler_name"),
            "scheduler": self.parameters.get("scheduler"),
            "cfg_scale": self.parameters.get("cfg_scale"),
            "steps": self.parameters.get("steps"),
            "batch_size": self.parameters.get("batch_size"),
            "restore_faces": False,
            "face_restoration_model": None,
            "sd_model_name": self.parameters.get("sd_model_name"),
            "sd_model_hash": self.parameters.get("sd_model_hash"),
            "sd_vae_name": self.parameters.get("sd_vae_name"),
            "sd_vae_hash": self.parameters.get("sd_vae_hash"),
            "seed_resize_from_w": self.parameters.get("seed_resize_from_w", -1),
            "seed_resize_from_h": self.parameters.get("seed_resize_from_h", -1),
            "denoising_strength": self.parameters.get("denoising_strength"),
            "extra_generation_params": self.parameters.get("extra_generation_params", {}),
            "index_of_first_image": self.index_of_first_image,
            "infotexts": self.infotexts,
            "styles": self.parameters.get("styles", []),
            "job_timestamp": self.parameters.get("job_timestamp"),
            "clip_skip": self.parameters.get("clip_skip", 1),
            "is_using_inpainting_conditioning": False,
            "version": self.parameters.get("version"),
            "comments": "\n".join(self.comments),
            "interrupted": self.interrupted,
        }
        return json.dumps(data, ensure_ascii=False)
