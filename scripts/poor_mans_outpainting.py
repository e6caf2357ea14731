"""Poor man's outpainting: grow the canvas by some pixels in the chosen directions and inpaint the new
border with an ordinary img2img pass.

Written against the A1111 Script API only. Arguments, in A1111's order: pixels, mask_blur,
inpainting_fill (index 0..3 of fill / original / latent noise / latent nothing, or the name),
direction (a list of left / right / up / down).
"""

from __future__ import annotations

import gradio as gr

import modules.scripts as scripts
from modules import images, processing, shared
from modules.generation.outpainting import DIRECTIONS, poor_mans_outpainting, processing_generator
from modules.plugins.builtin.script_arguments import choices_argument, whole_argument
from modules.processing import Processed, process_images

MASKED_CONTENT = ("fill", "original", "latent noise", "latent nothing")


def _masked_content(value) -> int:
    if isinstance(value, str) and value in MASKED_CONTENT:
        return MASKED_CONTENT.index(value)
    if isinstance(value, int | float) and not isinstance(value, bool) and value in range(len(MASKED_CONTENT)):
        return int(value)
    raise ValueError(f"inpainting_fill: expected an index 0..3 or one of {', '.join(MASKED_CONTENT)}, got {value!r}")


class Script(scripts.Script):
    def title(self):
        return "Poor man's outpainting"

    def show(self, is_img2img):
        return is_img2img

    def ui(self, is_img2img):
        pixels = gr.Slider(label="Pixels to expand", minimum=8, maximum=256, step=8, value=128, elem_id=self.elem_id("pixels"))
        mask_blur = gr.Slider(label="Mask blur", minimum=0, maximum=64, step=1, value=4, elem_id=self.elem_id("mask_blur"))
        inpainting_fill = gr.Radio(
            label="Masked content", choices=list(MASKED_CONTENT), value="fill", type="index", elem_id=self.elem_id("inpainting_fill")
        )
        direction = gr.CheckboxGroup(
            label="Outpainting direction", choices=list(DIRECTIONS), value=list(DIRECTIONS), elem_id=self.elem_id("direction")
        )
        return [pixels, mask_blur, inpainting_fill, direction]

    def run(self, p, pixels=128, mask_blur=4, inpainting_fill=0, direction=DIRECTIONS):
        pixels = whole_argument("pixels", pixels, 8, 256)
        mask_blur = whole_argument("mask_blur", mask_blur, 0, 64)
        fill = _masked_content(inpainting_fill)
        directions = choices_argument("direction", direction, DIRECTIONS)
        if not p.init_images:
            raise ValueError("init_images: outpainting needs an init image")
        processing.fix_seed(p)
        save = not p.do_not_save_samples
        shared.state.job_count = p.n_iter
        generate = processing_generator(p, process_images, do_not_save_samples=True, do_not_save_grid=True)
        result = poor_mans_outpainting(generate, p.params, pixels=pixels, directions=directions, mask_blur=mask_blur, inpainting_fill=fill)
        first = result.processed[0]
        seeds = (
            list(first.all_seeds[-len(result.images) :]) if len(first.all_seeds) >= len(result.images) else [p.seed] * len(result.images)
        )
        if save and getattr(shared.opts, "samples_save", True) and p.outpath_samples:
            for image, text, seed in zip(result.images, result.infotexts, seeds, strict=True):
                images.save_image(
                    image, p.outpath_samples, "", seed, p.prompt, getattr(shared.opts, "samples_format", "png"), info=text, p=p
                )
        return Processed(
            p, result.images, p.seed, result.infotexts[0] if result.infotexts else "", all_seeds=seeds, infotexts=result.infotexts
        )
