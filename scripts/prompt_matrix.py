"""Prompt matrix: generate every combination of the ``|``-separated parts of the prompt as a labelled grid.

Written against the A1111 Script API only. Arguments, in A1111's order: put_at_start,
different_seeds, prompt_type ("positive" / "negative"), variations_delimiter ("comma" / "space"),
margin_size.
"""

from __future__ import annotations

import copy

import gradio as gr
import modules.scripts as scripts
from modules.processing import process_images

from modules import images, processing, shared
from modules.plugins.builtin.prompt_matrix_logic import PromptMatrixError, build_matrix
from modules.plugins.builtin.xyz_grid_image import draw_labeled_grid


class Script(scripts.Script):
    def title(self):
        return "Prompt matrix"

    def ui(self, is_img2img):
        gr.HTML("<br />")
        with gr.Row():
            with gr.Column():
                put_at_start = gr.Checkbox(label="Put variable parts at start of prompt", value=False, elem_id=self.elem_id("put_at_start"))
                different_seeds = gr.Checkbox(
                    label="Use different seed for each picture", value=False, elem_id=self.elem_id("different_seeds")
                )
            with gr.Column():
                prompt_type = gr.Radio(
                    ["positive", "negative"], label="Select prompt", value="positive", elem_id=self.elem_id("prompt_type")
                )
                variations_delimiter = gr.Radio(
                    ["comma", "space"], label="Select joining char", value="comma", elem_id=self.elem_id("variations_delimiter")
                )
            with gr.Column():
                margin_size = gr.Slider(
                    label="Grid margins (px)", minimum=0, maximum=500, value=0, step=2, elem_id=self.elem_id("margin_size")
                )
        return [put_at_start, different_seeds, prompt_type, variations_delimiter, margin_size]

    def run(self, p, put_at_start=False, different_seeds=False, prompt_type="positive", variations_delimiter="comma", margin_size=0):
        if prompt_type not in ("positive", "negative"):
            raise PromptMatrixError(f"prompt_type: expected 'positive' or 'negative', got {prompt_type!r}")
        processing.fix_seed(p)
        source = p.prompt if prompt_type == "positive" else p.negative_prompt
        matrix = build_matrix(source, variable_parts_at_start=bool(put_at_start), joiner=variations_delimiter)
        shared.state.job_count = len(matrix.prompts)

        cell_images, infotexts, all_prompts, all_seeds = [], [], [], []
        first = None
        for index, prompt in enumerate(matrix.prompts):
            if shared.state.interrupted:
                break
            cell = copy.copy(p)
            cell.styles = list(getattr(p, "styles", None) or [])
            if prompt_type == "positive":
                cell.prompt = prompt
            else:
                cell.negative_prompt = prompt
            cell.seed = p.seed + index if different_seeds else p.seed
            cell.n_iter = 1
            cell.batch_size = 1
            cell.do_not_save_grid = True
            shared.state.job = f"{index + 1} out of {len(matrix.prompts)}"
            processed = process_images(cell)
            first = first or processed
            cell_images.append(processed.images[0])
            infotexts.append(processed.infotexts[0] if processed.infotexts else "")
            all_prompts.append(cell.prompt)
            all_seeds.append(cell.seed)
        if first is None:
            raise PromptMatrixError("prompt matrix: no image was generated")
        while len(cell_images) < matrix.columns * matrix.rows:
            cell_images.append(cell_images[0].copy())

        grid = draw_labeled_grid(cell_images, matrix.column_labels, matrix.row_labels, margin=int(margin_size))
        if getattr(shared.opts, "grid_save", True) and not getattr(p, "do_not_save_grid", False):
            images.save_image(
                grid,
                p.outpath_grids,
                "prompt_matrix",
                info=infotexts[0],
                extension=getattr(shared.opts, "grid_format", "png"),
                prompt=p.prompt,
                seed=p.seed,
                grid=True,
                p=p,
            )

        result = copy.copy(first)
        result.images = [grid, *cell_images[: len(infotexts)]]
        result.infotexts = [infotexts[0], *infotexts]
        result.all_prompts = [all_prompts[0], *all_prompts]
        result.all_seeds = [all_seeds[0], *all_seeds]
        result.index_of_first_image = 1
        return result
