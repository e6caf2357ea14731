"""The moments at which a generation lets scripts act, as one small interface the pipelines call.

The pipelines (txt2img, img2img) call these methods on `GenerationContext.scripts`; the default
`NoScriptHooks` does nothing. The script system supplies an implementation that forwards each call to
the scripts of the job, so the core never depends on it.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from PIL import Image


class ScriptHooks(Protocol):
    """Called by a pipeline, in this order, with the job's params object (which hooks may change)."""

    def before_process(self, params: Any) -> None:
        """Before seeds and prompts are made; may change any parameter."""

    def process(self, params: Any, prompts: list[str], negative_prompts: list[str], seeds: list[int], subseeds: list[int]) -> None:
        """After seeds and prompts exist; the lists may be changed in place."""

    def before_process_batch(self, params: Any, batch_number: int, prompts: list[str], seeds: list[int], subseeds: list[int]) -> None:
        """Before a batch's conditioning is built; the batch's lists may be changed in place."""

    def process_batch(self, params: Any, batch_number: int, prompts: list[str], seeds: list[int], subseeds: list[int]) -> None:
        """Right before a batch is sampled."""

    def postprocess_batch(self, params: Any, images: torch.Tensor, batch_number: int) -> None:
        """After decoding, with the batch as a (B, 3, H, W) tensor in [0, 1] (may be changed in place)."""

    def postprocess_batch_list(self, params: Any, images: list[Image.Image], batch_number: int) -> list[Image.Image]:
        """With the batch as a list of images; returns the list to keep (items may be added or removed)."""

    def postprocess_image(self, params: Any, image: Image.Image) -> Image.Image:
        """For each image before its infotext is made and it is saved; returns the image to keep."""

    def extra_generation_params(self, params: Any) -> dict[str, Any]:
        """Infotext fields the scripts added (`p.extra_generation_params`), in their order."""

    def postprocess(self, params: Any, processed: Any) -> None:
        """After all batches, with the `Processed` result (may be changed in place)."""


class NoScriptHooks:
    """The default: no scripts, nothing changes."""

    def before_process(self, params: Any) -> None:
        return None

    def process(self, params: Any, prompts: list[str], negative_prompts: list[str], seeds: list[int], subseeds: list[int]) -> None:
        return None

    def before_process_batch(self, params: Any, batch_number: int, prompts: list[str], seeds: list[int], subseeds: list[int]) -> None:
        return None

    def process_batch(self, params: Any, batch_number: int, prompts: list[str], seeds: list[int], subseeds: list[int]) -> None:
        return None

    def postprocess_batch(self, params: Any, images: torch.Tensor, batch_number: int) -> None:
        return None

    def postprocess_batch_list(self, params: Any, images: list[Image.Image], batch_number: int) -> list[Image.Image]:
        return images

    def postprocess_image(self, params: Any, image: Image.Image) -> Image.Image:
        return image

    def extra_generation_params(self, params: Any) -> dict[str, Any]:
        return {}

    def postprocess(self, params: Any, processed: Any) -> None:
        return None
