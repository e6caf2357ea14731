"""Outpainting mk2: grow the canvas one direction at a time, filling each new strip with colour-matched
noise and inpainting it with a mask that fades into the original.

Written against the A1111 Script API only. Arguments, in A1111's order: info (the note, unused),
pixels, mask_blur, direction (a list of left / right / up / down), noise_q (fall-off exponent),
color_variation.
"""

from __future__ import annotations

import copy

import gradio as gr

import modules.scripts as scripts
from modules import images, processing, shared
from modules.generation.outpainting import DIRECTIONS, outpainting_mk2, processing_generator
from modules.plugins.builtin.script_arguments import choices_argument, number_argument, whole_argument
from modules.processing import Processed, process_images


class Script(scripts.Script):
    def title(self):
        return "Outpainting mk2"

    def show(self, is_img2img):
        return is_img2img

    def ui(self, is_img2img):
        info = gr.HTML(
            '<p style="margin-bottom:0.75em">Recommended settings: Sampling Steps: 80-100, Sampler: Euler a, Denoising strength: 0.8</p>'
        )
        pixels = gr.Slider(label="Pixels to expand", minimum=8, maximum=256, step=8, value=128, elem_id=self.elem_id("pixels"))
        mask_blur = gr.Slider(label="Mask blur", minimum=0, maximum=64, step=1, value=8, elem_id=self.elem_id("mask_blur"))
        direction = gr.CheckboxGroup(
            label="Outpainting direction", choices=list(DIRECTIONS), value=list(DIRECTIONS), elem_id=self.elem_id("direction")
        )
        noise_q = gr.Slider(
            label="Fall-off exponent (lower=higher detail)", minimum=0.0, maximum=4.0, step=0.01, value=1.0, elem_id=self.elem_id("noise_q")
        )
        color_variation = gr.Slider(
            label="Color variation", minimum=0.0, maximum=1.0, step=0.01, value=0.05, elem_id=self.elem_id("color_variation")
        )
        return [info, pixels, mask_blur, direction, noise_q, color_variation]

    def run(self, p, _info=None, pixels=128, mask_blur=8, direction=DIRECTIONS, noise_q=1.0, color_variation=0.05):
        pixels = whole_argument("pixels", pixels, 8, 256)
        mask_blur = whole_argument("mask_blur", mask_blur, 0, 64)
        directions = choices_argument("direction", direction, DIRECTIONS)
        noise_q = number_argument("noise_q", noise_q, 0.0, 4.0)
        color_variation = number_argument("color_variation", color_variation, 0.0, 1.0)
        if not p.init_images:
            raise ValueError("init_images: outpainting needs an init image")
        processing.fix_seed(p)
        save = not p.do_not_save_samples
        shared.state.job_count = p.n_iter * len(directions)
        generate = processing_generator(p, process_images, do_not_save_samples=True, do_not_save_grid=True)
        results, infotexts, seeds = [], [], []
        for iteration in range(p.n_iter):
            if shared.state.interrupted:
                break
            params = copy.copy(p.params)
            params.seed = p.seed + iteration
            outcome = outpainting_mk2(
                generate,
                params,
                pixels=pixels,
                directions=directions,
                mask_blur=mask_blur,
                noise_q=noise_q,
                color_variation=color_variation,
            )
            results.extend(outcome.images)
            infotexts.extend(outcome.infotexts)
            seeds.extend([params.seed] * len(outcome.images))
        if save and getattr(shared.opts, "samples_save", True) and p.outpath_samples:
            for image, text, seed in zip(results, infotexts, seeds, strict=True):
                images.save_image(
                    image, p.outpath_samples, "", seed, p.prompt, getattr(shared.opts, "samples_format", "png"), info=text, p=p
                )
        return Processed(p, results, p.seed, infotexts[0] if infotexts else "", all_seeds=seeds, infotexts=infotexts)
