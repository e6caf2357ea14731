"""`process_images(p)` and the adapter that lets a pipeline call the scripts of `p`.

`ProcessingHooks(p)` implements the core's `ScriptHooks`: it keeps `p`'s prompt, seed and batch
fields in step with the pipeline and calls the always-on scripts' hooks with `p` (A1111's keyword
arguments included). Lists a script reassigns on `p` are copied back into the pipeline's lists.
"""

from __future__ import annotations

from typing import Any

from modules.generation.results import Processed
from modules.plugins import runtime
from modules.plugins.callbacks import registry
from modules.plugins.script_base import PostprocessBatchListArgs, PostprocessImageArgs


class ProcessingHooks:
    """The core pipeline's script hooks for one processing object `p`."""

    def __init__(self, p: Any) -> None:
        self.p = p

    @property
    def scripts(self) -> Any:
        return getattr(self.p, "scripts", None)

    def before_process(self, params: Any) -> None:
        if self.scripts is not None:
            self.scripts.before_process(self.p)

    def process(self, params: Any, prompts: list[str], negative_prompts: list[str], seeds: list[int], subseeds: list[int]) -> None:
        p = self.p
        p.all_prompts, p.all_negative_prompts, p.all_seeds, p.all_subseeds = prompts, negative_prompts, seeds, subseeds
        if seeds:
            p.seed, p.subseed = seeds[0], subseeds[0]
        if self.scripts is not None:
            self.scripts.process(p)
        _copy_back(prompts, p.all_prompts)
        _copy_back(negative_prompts, p.all_negative_prompts)
        _copy_back(seeds, p.all_seeds)
        _copy_back(subseeds, p.all_subseeds)

    def _batch(self, hook: str, batch_number: int, prompts: list[str], seeds: list[int], subseeds: list[int]) -> None:
        p = self.p
        start = batch_number * p.batch_size
        p.iteration = batch_number
        p.prompts, p.seeds, p.subseeds = prompts, seeds, subseeds
        p.negative_prompts = p.all_negative_prompts[start : start + len(prompts)]
        if self.scripts is not None:
            getattr(self.scripts, hook)(p, batch_number=batch_number, prompts=p.prompts, seeds=p.seeds, subseeds=p.subseeds)
        _copy_back(prompts, p.prompts)
        _copy_back(seeds, p.seeds)
        _copy_back(subseeds, p.subseeds)

    def before_process_batch(self, params: Any, batch_number: int, prompts: list[str], seeds: list[int], subseeds: list[int]) -> None:
        self._batch("before_process_batch", batch_number, prompts, seeds, subseeds)

    def process_batch(self, params: Any, batch_number: int, prompts: list[str], seeds: list[int], subseeds: list[int]) -> None:
        self._batch("process_batch", batch_number, prompts, seeds, subseeds)

    def postprocess_batch(self, params: Any, images: Any, batch_number: int) -> None:
        if self.scripts is not None:
            self.scripts.postprocess_batch(self.p, images, batch_number=batch_number)

    def postprocess_batch_list(self, params: Any, images: list[Any], batch_number: int) -> list[Any]:
        if self.scripts is None:
            return images
        pp = PostprocessBatchListArgs(list(images))
        self.scripts.postprocess_batch_list(self.p, pp, batch_number=batch_number)
        return list(pp.images)

    def postprocess_image(self, params: Any, image: Any) -> Any:
        if self.scripts is None:
            return image
        pp = PostprocessImageArgs(image)
        self.scripts.postprocess_image(self.p, pp)
        return pp.image

    def extra_generation_params(self, params: Any) -> dict[str, Any]:
        values = getattr(self.p, "extra_generation_params", None) or {}
        return {key: value for key, value in values.items() if value is not None and not callable(value)}

    def postprocess(self, params: Any, processed: Any) -> None:
        if self.scripts is not None:
            self.scripts.postprocess(self.p, processed)


def _copy_back(target: list[Any], value: Any) -> None:
    if value is not target and isinstance(value, list | tuple):
        target[:] = list(value)


def process_images(p: Any) -> Processed:
    """Run `p` through the txt2img or img2img pipeline with its always-on scripts (A1111's
    `process_images`). Inside a job (a script's run()) it runs in that job; elsewhere it is queued."""
    context = runtime.require_context()
    job = runtime.thread_job()
    if job is not None:
        return _process(context, p, job)
    return context.jobs.run(lambda queued: _process_in_job(context, p, queued), name="process_images")


def _process_in_job(context: Any, p: Any, job: Any) -> Processed:
    runtime.set_current_job(job, context)
    try:
        return _process(context, p, job)
    finally:
        runtime.set_current_job(None)


def _process(context: Any, p: Any, job: Any) -> Processed:
    from modules.generation.img2img import img2img
    from modules.generation.txt2img import txt2img

    context.ensure_model(p.override_settings)
    if getattr(context, "scripts", None) is not None:
        context.scripts.model_loaded()
    generation = context.generation_context()
    generation.scripts = ProcessingHooks(p)
    registry.attach_denoiser(generation.hooks)
    pipeline = img2img if p.is_img2img else txt2img
    return pipeline(p.params, generation, job)
