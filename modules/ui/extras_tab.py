"""The Extras tab: resize an image by a factor or to a size with a plain resampling upscaler, saved to
`outdir_extras_samples` with the source's infotext. Model upscalers are added by their own module."""

from __future__ import annotations

import html
import time
from dataclasses import dataclass
from typing import Any

import gradio as gr
from PIL import Image

from modules.app.context import AppContext
from modules.imaging.metadata import encode_image, read_infotext
from modules.ui.txt2img_tab import outputs_folder

UPSCALERS = {"Lanczos": Image.Resampling.LANCZOS, "Nearest": Image.Resampling.NEAREST}
MAX_SIDE = 8192


@dataclass
class ExtrasTab:
    image: Any = None
    result: Any = None
    info: Any = None


def upscale(image: Image.Image, scale: float, upscaler: str) -> Image.Image:
    if upscaler not in UPSCALERS:
        raise ValueError(f"Upscaler: unknown {upscaler!r}")
    if not 0.1 <= scale <= 8:
        raise ValueError(f"Resize: must be between 0.1 and 8, got {scale}")
    width, height = round(image.width * scale), round(image.height * scale)
    if max(width, height) > MAX_SIDE:
        raise ValueError(f"Resize: result {width}x{height} is larger than {MAX_SIDE} pixels on a side")
    return image.resize((max(1, width), max(1, height)), UPSCALERS[upscaler])


def build_extras_tab(context: AppContext) -> ExtrasTab:
    tab = ExtrasTab()
    with gr.Row():
        with gr.Column():
            tab.image = gr.Image(label="Source", type="pil", elem_id="extras_image")
            scale = gr.Slider(0.5, 8, value=2, step=0.05, label="Resize", elem_id="extras_upscaling_resize")
            upscaler = gr.Dropdown(list(UPSCALERS), value="Lanczos", label="Upscaler 1", elem_id="extras_upscaler_1")
            run = gr.Button("Generate", variant="primary", elem_id="extras_generate")
        with gr.Column():
            tab.result = gr.Gallery(label="Result", type="pil", format="png", elem_id="extras_gallery", interactive=False)
            tab.info = gr.HTML(elem_id="html_info_extras")

    def on_run(image: Image.Image | None, factor: float, name: str) -> tuple[Any, str]:
        if image is None:
            return gr.update(), "<div class='error'>Source: upload an image first</div>"
        try:
            result = upscale(image.convert("RGB"), float(factor), name)
        except ValueError as error:
            return gr.update(), f"<div class='error'>{html.escape(str(error))}</div>"
        folder = outputs_folder(context, "outdir_extras_samples")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{time.strftime('%Y%m%d%H%M%S')}-{name.lower()}.png"
        path.write_bytes(encode_image(result, "png", read_infotext(image) or ""))
        return [result], f"<p>Saved {html.escape(path.name)} ({result.width}x{result.height}).</p>"

    run.click(on_run, inputs=[tab.image, scale, upscaler], outputs=[tab.result, tab.info])
    return tab
