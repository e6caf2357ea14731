"""Prompts from file or textbox: every line is a separate job, with its own ``--option value`` arguments.

Written against the A1111 Script API only. Arguments, in A1111's order: checkbox_iterate
("Iterate seed every line"), checkbox_iterate_batch ("Use same random seed for all lines"),
prompt_position ("start" / "end"), prompt_txt.
"""

from __future__ import annotations

import copy
import random

import gradio as gr
import modules.scripts as scripts
from modules.processing import process_images

from modules import shared
from modules.plugins.builtin.prompts_file_parser import PromptsFileError, apply_job, parse_lines


def _read_upload(file) -> str:
    if file is None:
        return ""
    path = file if isinstance(file, str) else getattr(file, "name", None) or getattr(file, "path", "")
    with open(path, encoding="utf-8-sig") as handle:
        return handle.read()


class Script(scripts.Script):
    def title(self):
        return "Prompts from file or textbox"

    def ui(self, is_img2img):
        checkbox_iterate = gr.Checkbox(label="Iterate seed every line", value=False, elem_id=self.elem_id("checkbox_iterate"))
        checkbox_iterate_batch = gr.Checkbox(
            label="Use same random seed for all lines", value=False, elem_id=self.elem_id("checkbox_iterate_batch")
        )
        prompt_position = gr.Radio(["start", "end"], label="Insert prompts at the", value="start", elem_id=self.elem_id("prompt_position"))
        prompt_txt = gr.Textbox(label="List of prompt inputs", lines=2, elem_id=self.elem_id("prompt_txt"))
        file = gr.File(label="Upload prompt inputs", type="filepath", elem_id=self.elem_id("file"))
        file.change(fn=_read_upload, inputs=[file], outputs=[prompt_txt], show_progress=False)
        return [checkbox_iterate, checkbox_iterate_batch, prompt_position, prompt_txt]

    def run(self, p, checkbox_iterate=False, checkbox_iterate_batch=False, prompt_position="start", prompt_txt=""):
        jobs = parse_lines(prompt_txt or "")
        if not jobs:
            raise PromptsFileError("prompt_txt: enter at least one line")
        if (checkbox_iterate or checkbox_iterate_batch) and p.seed == -1:
            p.seed = int(random.randrange(4294967294))
        per_job = [max(1, int(job.get("n_iter", getattr(p, "n_iter", 1)))) for job in jobs]
        shared.state.job_count = sum(per_job)

        all_images, infotexts, all_prompts, all_seeds = [], [], [], []
        first = None
        for number, job in enumerate(jobs, start=1):
            if shared.state.interrupted:
                break
            shared.state.job = f"{number} out of {len(jobs)}"
            cell = copy.copy(p)
            cell.styles = list(getattr(p, "styles", None) or [])
            cell.override_settings = dict(getattr(p, "override_settings", None) or {})
            apply_job(cell, job, prompt_position=prompt_position)
            processed = process_images(cell)
            first = first or processed
            all_images += processed.images
            infotexts += processed.infotexts
            all_prompts += list(getattr(processed, "all_prompts", None) or [cell.prompt] * len(processed.images))
            all_seeds += list(getattr(processed, "all_seeds", None) or [processed.seed] * len(processed.images))
            if checkbox_iterate:
                p.seed = p.seed + p.batch_size * p.n_iter
        if first is None:
            raise PromptsFileError("prompt_txt: no job ran")

        result = copy.copy(first)
        result.images = all_images
        result.infotexts = infotexts
        result.all_prompts = all_prompts
        result.all_seeds = all_seeds
        result.index_of_first_image = 0
        return result
