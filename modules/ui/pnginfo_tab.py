"""The PNG Info tab: drop a PNG, JPEG or WebP and read the generation parameters stored in it.

Everything read from the file is escaped before it is shown, so an infotext holding HTML or script
renders as inert text. The raw text goes to a hidden box that the send buttons read.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import gradio as gr
from PIL import Image, UnidentifiedImageError

from modules.imaging.metadata import read_infotext

SKIPPED_INFO_KEYS = {"exif", "icc_profile", "dpi", "jfif", "jfif_version", "jfif_unit", "jfif_density", "parameters", "loop", "duration"}


@dataclass
class PngInfoTab:
    image: Any = None
    html_info: Any = None
    generation_info: Any = None
    send_to_txt2img: Any = None
    send_to_img2img: Any = None
    send_to_inpaint: Any = None
    send_to_extras: Any = None


def read_image_info(path: str | None) -> tuple[str, str]:
    """(escaped HTML, raw infotext) for the image file at `path`."""
    if not path:
        return "", ""
    try:
        with Image.open(path) as image:
            infotext = read_infotext(image) or ""
            extra = {key: value for key, value in image.info.items() if key not in SKIPPED_INFO_KEYS and isinstance(value, str)}
    except (OSError, UnidentifiedImageError) as error:
        return f"<div class='error'>Not an image: {html.escape(str(error))}</div>", ""
    sections = []
    if infotext:
        sections.append(("parameters", infotext))
    sections.extend(extra.items())
    if not sections:
        return "<div class='infotext'><p>Nothing found in the image.</p></div>", ""
    body = "".join(
        f"<div class='infotext'><p><b>{html.escape(str(key))}</b></p><pre class='infotext-text'>{html.escape(str(value))}</pre></div>"
        for key, value in sections
    )
    return body, infotext


def build_pnginfo_tab() -> PngInfoTab:
    tab = PngInfoTab()
    with gr.Row(elem_id="pnginfo_page"):
        with gr.Column():
            tab.image = gr.Image(label="Source", type="filepath", image_mode=None, elem_id="pnginfo_image", sources=["upload", "clipboard"])
        with gr.Column():
            tab.html_info = gr.HTML(elem_id="pnginfo_html_info")
            tab.generation_info = gr.Textbox(visible=False, elem_id="pnginfo_generation_info")
            with gr.Row():
                tab.send_to_txt2img = gr.Button("Send to txt2img", elem_id="pnginfo_send_to_txt2img")
                tab.send_to_img2img = gr.Button("Send to img2img", elem_id="pnginfo_send_to_img2img")
                tab.send_to_inpaint = gr.Button("Send to inpaint", elem_id="pnginfo_send_to_inpaint")
                tab.send_to_extras = gr.Button("Send to extras", elem_id="pnginfo_send_to_extras")
    tab.image.change(read_image_info, inputs=[tab.image], outputs=[tab.html_info, tab.generation_info])
    return tab
