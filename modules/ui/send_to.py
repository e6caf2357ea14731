"""Sending an image and its infotext from one tab to another (txt2img/img2img results, PNG Info).

A send fills the target tab's generation fields from the infotext, puts the image into the target's
image input and switches to that tab.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
from PIL import Image

from modules.ui.generation_events import paste_updates
from modules.ui.generation_panel import GenerationPanel


def editor_value(image: Image.Image) -> dict[str, Any]:
    """An image-editor value with `image` as the background and no strokes."""
    return {"background": image, "layers": [], "composite": image}


def paste_outputs(panel: GenerationPanel) -> list[Any]:
    return [component for name, component in panel.fields.items() if name != "styles"] + [panel.seed_extras, panel.seed_extras_row]


def send_updates(
    image: Image.Image | None,
    infotext: str,
    *,
    tabs: Any,
    tab_id: str,
    panel: GenerationPanel | None = None,
    image_target: Any = None,
    as_editor: bool = False,
    sub_tabs: Any = None,
    sub_tab_id: str | None = None,
) -> dict[Any, Any]:
    """The component updates of one send."""
    updates: dict[Any, Any] = {tabs: gr.Tabs(selected=tab_id)}
    if sub_tabs is not None and sub_tab_id is not None:
        updates[sub_tabs] = gr.Tabs(selected=sub_tab_id)
    if image_target is not None and image is not None:
        updates[image_target] = editor_value(image) if as_editor else image
    if panel is not None and infotext:
        updates.update(paste_updates(panel, infotext))
    return updates


def open_image(path: str | None) -> Image.Image | None:
    if not path:
        return None
    with Image.open(path) as image:
        image.load()
        return image.copy()
