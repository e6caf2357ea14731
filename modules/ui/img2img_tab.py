"""The img2img tab: sub-tabs img2img, Sketch, Inpaint, Inpaint sketch, Inpaint upload and Batch above the
shared generation panel, with resize mode, denoising strength and the inpainting controls.

Generate calls `AppContext.run_img2img(Img2ImgParams)` when the app has an img2img pipeline; until then
it says so and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from modules.app.context import AppContext
from modules.app.jobs import new_task_id
from modules.plugins.ui_scripts import selection_from_values
from modules.ui.extra_networks import ExtraNetworksSource
from modules.ui.generation_events import apply_styles_to_values, field_values, wire_generation_panel
from modules.ui.generation_panel import GenerationPanel, build_generation_panel
from modules.ui.styles import StyleDatabase
from modules.ui.txt2img_tab import build_params, outputs_folder
from modules.ui.ui_config import UiConfig

MODES = ("img2img", "Sketch", "Inpaint", "Inpaint sketch", "Inpaint upload", "Batch")
MODE_IDS = ("img2img_img2img_tab", "img2img_img2img_sketch_tab", "img2img_inpaint_tab", "img2img_inpaint_sketch_tab",
            "img2img_inpaint_upload_tab", "img2img_batch_tab")  # fmt: skip
RESIZE_MODES = ("Just resize", "Crop and resize", "Resize and fill", "Just resize (latent upscale)")
MASK_MODES = ("Inpaint masked", "Inpaint not masked")
MASKED_CONTENT = ("fill", "original", "latent noise", "latent nothing")
INPAINT_AREAS = ("Whole picture", "Only masked")
NOT_AVAILABLE = "img2img is not available yet in this version: the img2img pipeline is not installed."
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}


class InputError(ValueError):
    """The img2img inputs are incomplete; the message names the control."""


@dataclass
class Img2ImgInputs:
    mode: Any = None
    sub_tabs: Any = None
    image: Any = None
    sketch: Any = None
    inpaint: Any = None
    inpaint_sketch: Any = None
    upload_image: Any = None
    upload_mask: Any = None
    batch_input_dir: Any = None
    batch_output_dir: Any = None
    controls: dict[str, Any] = field(default_factory=dict)


def _layers_mask(value: dict) -> Image.Image | None:
    """The painted layers of an image-editor value as one white-on-black mask."""
    layers = [layer for layer in (value.get("layers") or []) if layer is not None]
    if not layers:
        return None
    alpha = np.zeros((layers[0].height, layers[0].width), dtype=np.uint8)
    for layer in layers:
        alpha = np.maximum(alpha, np.asarray(layer.convert("RGBA"))[..., 3])
    return Image.fromarray(np.where(alpha > 0, 255, 0).astype(np.uint8), "L")


def _changed_mask(before: Image.Image, after: Image.Image) -> Image.Image:
    """Where a sketch changed the picture (inpaint sketch: the drawn strokes are the mask)."""
    first = np.asarray(before.convert("RGB"), dtype=np.int16)
    second = np.asarray(after.convert("RGB").resize(before.size), dtype=np.int16)
    return Image.fromarray(np.where(np.abs(first - second).sum(axis=2) > 0, 255, 0).astype(np.uint8), "L")


def images_for_mode(mode: int, data: dict[str, Any]) -> tuple[Image.Image, Image.Image | None]:
    """The init image and mask the active sub-tab provides."""

    def need(value: Any, label: str) -> Any:
        if value is None:
            raise InputError(f"{label}: upload an image first")
        return value

    if mode == 0:
        return need(data["image"], "img2img image").convert("RGB"), None
    if mode in (1, 2, 3):
        label = MODES[mode]
        value = need(data[("sketch", "inpaint", "inpaint_sketch")[mode - 1]], label)
        background, composite = need(value.get("background"), label), value.get("composite")
        if mode == 1:
            return (composite or background).convert("RGB"), None
        if mode == 2:
            mask = _layers_mask(value)
            if mask is None:
                raise InputError("Inpaint: paint a mask over the image first")
            return background.convert("RGB"), mask
        return (composite or background).convert("RGB"), _changed_mask(background, composite or background)
    if mode == 4:
        image = need(data["upload_image"], "Inpaint upload image")
        mask = need(data["upload_mask"], "Inpaint upload mask")
        return image.convert("RGB"), mask.convert("L")
    raise InputError("Batch: use the batch folders")


def build_img2img_tab(
    context: AppContext, config: UiConfig, styles: StyleDatabase, *, allow_open_folder: bool
) -> tuple[GenerationPanel, Img2ImgInputs]:
    inputs = Img2ImgInputs()

    def image_inputs() -> None:
        inputs.mode = gr.State(0)
        with gr.Tabs(elem_id="mode_img2img") as inputs.sub_tabs:
            tabs = []
            with gr.Tab("img2img", id="img2img", elem_id=MODE_IDS[0]) as tab:
                inputs.image = gr.Image(label="Image for img2img", type="pil", elem_id="img2img_image", image_mode="RGBA", height=360)
                tabs.append(tab)
            with gr.Tab("Sketch", id="sketch", elem_id=MODE_IDS[1]) as tab:
                inputs.sketch = gr.ImageEditor(label="Image for img2img", type="pil", elem_id="img2img_sketch", height=360)
                tabs.append(tab)
            with gr.Tab("Inpaint", id="inpaint", elem_id=MODE_IDS[2]) as tab:
                inputs.inpaint = gr.ImageEditor(label="Image for inpainting with mask", type="pil", elem_id="img2maskimg", height=360)
                tabs.append(tab)
            with gr.Tab("Inpaint sketch", id="inpaint_sketch", elem_id=MODE_IDS[3]) as tab:
                inputs.inpaint_sketch = gr.ImageEditor(label="Color sketch inpainting", type="pil", elem_id="inpaint_sketch", height=360)
                tabs.append(tab)
            with gr.Tab("Inpaint upload", id="inpaint_upload", elem_id=MODE_IDS[4]) as tab:
                inputs.upload_image = gr.Image(label="Image for img2img", type="pil", elem_id="img_inpaint_base")
                inputs.upload_mask = gr.Image(label="Mask", type="pil", elem_id="img_inpaint_mask", image_mode="L")
                tabs.append(tab)
            with gr.Tab("Batch", id="batch", elem_id=MODE_IDS[5]) as tab:
                gr.Markdown("Process every image of a folder on the server.")
                inputs.batch_input_dir = gr.Textbox(label="Input directory", elem_id="img2img_batch_input_dir")
                inputs.batch_output_dir = gr.Textbox(label="Output directory", elem_id="img2img_batch_output_dir")
                tabs.append(tab)
        for index, tab in enumerate(tabs):
            tab.select(lambda index=index: index, outputs=[inputs.mode], queue=False)
        controls = inputs.controls
        controls["resize_mode"] = gr.Radio(
            list(RESIZE_MODES), value=RESIZE_MODES[0], type="index", label="Resize mode", elem_id="resize_mode"
        )
        with gr.Group(elem_id="inpaint_controls"):
            controls["mask_blur"] = gr.Slider(0, 64, value=4, step=1, label="Mask blur", elem_id="img2img_mask_blur")
            controls["inpainting_mask_invert"] = gr.Radio(
                list(MASK_MODES), value=MASK_MODES[0], type="index", label="Mask mode", elem_id="img2img_mask_mode"
            )
            controls["inpainting_fill"] = gr.Radio(
                list(MASKED_CONTENT), value="original", type="index", label="Masked content", elem_id="img2img_inpainting_fill"
            )
            controls["inpaint_full_res"] = gr.Radio(
                list(INPAINT_AREAS), value=INPAINT_AREAS[0], type="index", label="Inpaint area", elem_id="img2img_inpaint_full_res"
            )
            controls["inpaint_full_res_padding"] = gr.Slider(
                0, 256, value=32, step=4, label="Only masked padding, pixels", elem_id="img2img_inpaint_full_res_padding"
            )

    def denoising() -> None:
        inputs.controls["denoising_strength"] = gr.Slider(
            label="Denoising strength",
            elem_id="img2img_denoising_strength",
            **config.apply("img2img", "Denoising strength", {"minimum": 0.0, "maximum": 1.0, "step": 0.01, "value": 0.75}),
        )

    scripts = context.scripts.img2img if getattr(context, "scripts", None) is not None else None
    panel = build_generation_panel(
        "img2img",
        config,
        styles.names(),
        allow_open_folder=allow_open_folder,
        before_parameters=image_inputs,
        size_row_extra=denoising,
        scripts=scripts,
        extra_networks_source=ExtraNetworksSource.from_context(context),
    )
    panel.fields.update(inputs.controls)
    images = {
        "image": inputs.image,
        "sketch": inputs.sketch,
        "inpaint": inputs.inpaint,
        "inpaint_sketch": inputs.inpaint_sketch,
        "upload_image": inputs.upload_image,
        "upload_mask": inputs.upload_mask,
        "batch_input_dir": inputs.batch_input_dir,
        "batch_output_dir": inputs.batch_output_dir,
    }

    def make_call(data: dict[Any, Any]):
        run = getattr(context, "run_img2img", None)
        if run is None:
            raise InputError(NOT_AVAILABLE)
        from modules.generation.params import Img2ImgParams  # noqa: PLC0415 - present once img2img is installed

        values = apply_styles_to_values(field_values(panel, data), styles)
        values["inpaint_full_res"] = bool(values.get("inpaint_full_res"))
        mode = int(data[inputs.mode] or 0)
        raw = {name: data.get(component) for name, component in images.items()}
        task_id = new_task_id()
        selection = selection_from_values(panel, data)

        def call_one(image: Image.Image, mask: Image.Image | None) -> Any:
            params = build_params(Img2ImgParams, {**values, "init_images": [image], "mask": mask}, context)
            return run(params, task_id=task_id, scripts=selection)

        if mode == 5:
            folder = Path((raw["batch_input_dir"] or "").strip())
            if not folder.is_dir():
                raise InputError(f"Input directory: {folder} is not a folder")
            files = sorted(path for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise InputError(f"Input directory: no images in {folder}")
            return (lambda: _run_batch(files, call_one, raw["batch_output_dir"])), None
        image, mask = images_for_mode(mode, raw)
        build_params(Img2ImgParams, {**values, "init_images": [image], "mask": mask}, context)  # validate before queueing
        return (lambda: call_one(image, mask)), task_id

    wire_generation_panel(
        panel,
        context,
        styles,
        make_call,
        extra_inputs=[inputs.mode, *images.values(), *(getattr(panel, "script_inputs", None) or [])],
        outputs_folder=outputs_folder(context, "outdir_img2img_samples"),
    )
    return panel, inputs


def _run_batch(files: list[Path], call_one, output_dir: str | None) -> Any:
    """img2img every file; with an output folder, also write each result there under the input's name."""
    last = None
    target = Path(output_dir.strip()) if output_dir and output_dir.strip() else None
    for path in files:
        with Image.open(path) as opened:
            processed = call_one(opened.convert("RGB"), None)
        if target is not None and processed.images:
            target.mkdir(parents=True, exist_ok=True)
            processed.images[processed.index_of_first_image].save(target / f"{path.stem}.png")
        if last is None:
            last = processed
        else:
            last.images.extend(processed.images)
            last.infotexts.extend(processed.infotexts)
            last.all_seeds.extend(processed.all_seeds)
            last.all_subseeds.extend(processed.all_subseeds)
    return last
