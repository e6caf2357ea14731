"""Loopback: feed each img2img result back in as the next init image, moving the denoising strength
from its starting value to a final one along a curve.

Written against the A1111 Script API only. Arguments, in A1111's order: loops,
final_denoising_strength, denoising_curve ("Aggressive" / "Linear" / "Lazy"), append_interrogation
(only "None": no interrogator is installed here).
"""

from __future__ import annotations

import copy

import gradio as gr

import modules.scripts as scripts
from modules import images, processing, shared
from modules.generation.outpainting import DENOISING_CURVES, denoising_schedule, loopback, processing_generator
from modules.plugins.builtin.script_arguments import number_argument, whole_argument
from modules.processing import Processed, process_images

INTERROGATORS = ("None",)


class Script(scripts.Script):
    def title(self):
        return "Loopback"

    def show(self, is_img2img):
        return is_img2img

    def ui(self, is_img2img):
        loops = gr.Slider(minimum=1, maximum=32, step=1, label="Loops", value=4, elem_id=self.elem_id("loops"))
        final_denoising_strength = gr.Slider(
            minimum=0, maximum=1, step=0.01, label="Final denoising strength", value=0.5, elem_id=self.elem_id("final_denoising_strength")
        )
        denoising_curve = gr.Dropdown(
            label="Denoising strength curve", choices=list(DENOISING_CURVES), value="Linear", elem_id=self.elem_id("denoising_curve")
        )
        append_interrogation = gr.Dropdown(
            label="Append interrogated prompt at each iteration",
            choices=list(INTERROGATORS),
            value="None",
            elem_id=self.elem_id("append_interrogation"),
        )
        return [loops, final_denoising_strength, denoising_curve, append_interrogation]

    def run(self, p, loops=4, final_denoising_strength=0.5, denoising_curve="Linear", append_interrogation="None"):
        loops = whole_argument("loops", loops, 1, 32)
        final = number_argument("final_denoising_strength", final_denoising_strength, 0.0, 1.0)
        if denoising_curve not in DENOISING_CURVES:
            raise ValueError(f"denoising_curve: choose from {', '.join(DENOISING_CURVES)}, got {denoising_curve!r}")
        if append_interrogation not in INTERROGATORS:
            raise ValueError(f"append_interrogation: only 'None' is available (no interrogator is installed), got {append_interrogation!r}")
        if not p.init_images:
            raise ValueError("init_images: loopback needs an init image")
        processing.fix_seed(p)
        strengths = denoising_schedule(float(p.denoising_strength), final, loops, denoising_curve)
        p.extra_generation_params["Final denoising strength"] = final
        p.extra_generation_params["Denoising curve"] = denoising_curve
        shared.state.job_count = p.n_iter * loops
        generate = processing_generator(p, process_images, do_not_save_grid=True)
        grids, outputs, infotexts, seeds = [], [], [], []
        for iteration in range(p.n_iter):
            if shared.state.interrupted:
                break
            params = copy.copy(p.params)
            params.seed = p.seed + iteration * loops
            outcome = loopback(generate, params, loops=loops, strengths=strengths)
            history = outcome.images
            kept = range(loops) if p.n_iter == 1 else [loops - 1]
            outputs.extend(history[index] for index in kept)
            infotexts.extend(outcome.infotexts[index] for index in kept)
            seeds.extend(params.seed + index for index in kept)
            grid = images.image_grid(history, rows=1)
            if getattr(shared.opts, "grid_save", True) and not p.do_not_save_grid and p.outpath_grids:
                images.save_image(
                    grid,
                    p.outpath_grids,
                    "grid",
                    params.seed,
                    p.prompt,
                    getattr(shared.opts, "grid_format", "png"),
                    info=outcome.infotexts[0],
                    grid=True,
                    p=p,
                )
            if getattr(shared.opts, "return_grid", True):
                grids.append((grid, outcome.infotexts[0], params.seed))
        all_images = [grid for grid, _, _ in grids] + outputs
        all_infotexts = [text for _, text, _ in grids] + infotexts
        all_seeds = [seed for _, _, seed in grids] + seeds
        return Processed(
            p,
            all_images,
            p.seed,
            all_infotexts[0] if all_infotexts else "",
            all_seeds=all_seeds,
            infotexts=all_infotexts,
            index_of_first_image=len(grids),
        )
