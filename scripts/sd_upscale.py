"""SD upscale: enlarge the init image, then img2img it tile by tile at the chosen width × height and
blend the tiles back together.

Written against the A1111 Script API only. Arguments, in A1111's order: info (the note, unused),
overlap (tile overlap in pixels), upscaler_index (index into the upscaler list, or its name),
scale_factor.
"""

from __future__ import annotations

import gradio as gr
from PIL import Image

import modules.scripts as scripts
from modules import images, processing, shared
from modules.generation.outpainting import processing_generator, sd_upscale, split_tiles
from modules.plugins.builtin.script_arguments import number_argument, whole_argument
from modules.processing import Processed, process_images

UPSCALERS = {
    "None": Image.Resampling.LANCZOS,  # no model: the image is only resized to the target size
    "Lanczos": Image.Resampling.LANCZOS,
    "Nearest": Image.Resampling.NEAREST,
}


def _upscaler_name(value) -> str:
    names = list(UPSCALERS)
    if isinstance(value, str) and value in UPSCALERS:
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer() and 0 <= int(value) < len(names):
        return names[int(value)]
    raise ValueError(f"upscaler_index: expected an index 0..{len(names) - 1} or one of {', '.join(names)}, got {value!r}")


class Script(scripts.Script):
    def title(self):
        return "SD upscale"

    def show(self, is_img2img):
        return is_img2img

    def ui(self, is_img2img):
        info = gr.HTML(
            '<p style="margin-bottom:0.75em">Will upscale the image by the selected scale factor; use width and height sliders to set tile size</p>'
        )
        overlap = gr.Slider(minimum=0, maximum=256, step=16, label="Tile overlap", value=64, elem_id=self.elem_id("overlap"))
        scale_factor = gr.Slider(minimum=1.0, maximum=4.0, step=0.05, label="Scale Factor", value=2.0, elem_id=self.elem_id("scale_factor"))
        upscaler_index = gr.Radio(
            label="Upscaler", choices=list(UPSCALERS), value="None", type="index", elem_id=self.elem_id("upscaler_index")
        )
        return [info, overlap, upscaler_index, scale_factor]

    def run(self, p, _info=None, overlap=64, upscaler_index=0, scale_factor=2.0):
        overlap = whole_argument("overlap", overlap, 0, 256)
        scale = number_argument("scale_factor", scale_factor, 1.0, 8.0)
        upscaler = _upscaler_name(upscaler_index)
        if not p.init_images:
            raise ValueError("init_images: SD upscale needs an init image")
        if overlap >= min(p.width, p.height):
            raise ValueError(f"overlap: must be smaller than the tile size {p.width}×{p.height}, got {overlap}")
        processing.fix_seed(p)
        save = not p.do_not_save_samples
        p.extra_generation_params["SD upscale overlap"] = overlap
        p.extra_generation_params["SD upscale upscaler"] = upscaler
        source = p.init_images[0]
        target = (round(source.width * scale), round(source.height * scale))
        tiles = len(split_tiles(Image.new("L", target), p.width, p.height, overlap))
        shared.state.job_count = p.n_iter * -(-tiles // p.batch_size)
        generate = processing_generator(p, process_images, do_not_save_samples=True, do_not_save_grid=True)
        result = sd_upscale(generate, p.params, scale=scale, overlap=overlap, resample=UPSCALERS[upscaler])
        seeds = [p.seed + iteration for iteration in range(len(result.images))]
        if save and getattr(shared.opts, "samples_save", True) and p.outpath_samples:
            for image, text, seed in zip(result.images, result.infotexts, seeds, strict=True):
                images.save_image(
                    image, p.outpath_samples, "", seed, p.prompt, getattr(shared.opts, "samples_format", "png"), info=text, p=p
                )
        return Processed(
            p, result.images, p.seed, result.infotexts[0] if result.infotexts else "", all_seeds=seeds, infotexts=result.infotexts
        )
