"""The results column of a generation tab: progress, live preview, gallery, the selected image's
infotext and the buttons under the gallery (open folder, save, zip, send to img2img/inpaint/extras).

`GenerationResult` is what the panel remembers about the last generation (kept in a `gr.State`).
"""

from __future__ import annotations

import html
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from modules.imaging.metadata import encode_image

FOLDER_SYMBOL = "📂"


@dataclass
class GenerationResult:
    """The last generation of one tab: images with their infotexts, seeds and saved files."""

    images: list[Image.Image] = field(default_factory=list)
    infotexts: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    subseeds: list[int] = field(default_factory=list)
    saved_paths: list[str] = field(default_factory=list)
    index_of_first_image: int = 0

    @classmethod
    def from_processed(cls, processed: Any) -> GenerationResult:
        return cls(
            images=list(processed.images),
            infotexts=list(processed.infotexts),
            seeds=list(processed.all_seeds),
            subseeds=list(processed.all_subseeds),
            saved_paths=[str(path) for path in getattr(processed, "saved_paths", [])],
            index_of_first_image=processed.index_of_first_image,
        )

    def infotext(self, selected: int | None) -> str:
        if not self.infotexts:
            return ""
        index = selected if selected is not None and 0 <= selected < len(self.infotexts) else self.index_of_first_image
        return self.infotexts[min(index, len(self.infotexts) - 1)]

    def image(self, selected: int | None) -> Image.Image | None:
        if not self.images:
            return None
        index = selected if selected is not None and 0 <= selected < len(self.images) else self.index_of_first_image
        return self.images[min(index, len(self.images) - 1)]

    def seed_of(self, selected: int | None, subseed: bool = False) -> int | None:
        """The seed of the selected image (the grid counts as the first image)."""
        seeds = self.subseeds if subseed else self.seeds
        if not seeds:
            return None
        index = (selected or 0) - self.index_of_first_image
        return seeds[max(0, min(index, len(seeds) - 1))]


@dataclass
class ResultsPanel:
    tab: str
    progress: Any = None
    preview: Any = None
    gallery: Any = None
    infotext: Any = None
    info_html: Any = None
    open_folder: Any = None
    save: Any = None
    save_zip: Any = None
    send_to_img2img: Any = None
    send_to_inpaint: Any = None
    send_to_extras: Any = None
    download: Any = None
    result: Any = None
    selected: Any = None


def build_results_panel(tab: str, *, allow_open_folder: bool) -> ResultsPanel:
    panel = ResultsPanel(tab)
    panel.progress = gr.HTML("", elem_id=f"{tab}_progress", elem_classes=["progress-area"])
    panel.preview = gr.Image(label="Live preview", visible=False, interactive=False, elem_id=f"{tab}_preview", type="pil")
    panel.gallery = gr.Gallery(label="Output", format="png", columns=2, elem_id=f"{tab}_gallery", type="pil", interactive=False)
    with gr.Row(elem_id=f"image_buttons_{tab}"):
        panel.open_folder = gr.Button(FOLDER_SYMBOL, elem_id=f"{tab}_open_folder", visible=allow_open_folder, scale=0, min_width=40)
        panel.save = gr.Button("Save", elem_id=f"save_{tab}", scale=1, min_width=60)
        panel.save_zip = gr.Button("Zip", elem_id=f"save_zip_{tab}", scale=1, min_width=60)
        panel.send_to_img2img = gr.Button("Send to img2img", elem_id=f"{tab}_send_to_img2img", min_width=60)
        panel.send_to_inpaint = gr.Button("Send to inpaint", elem_id=f"{tab}_send_to_inpaint", min_width=60)
        panel.send_to_extras = gr.Button("Send to extras", elem_id=f"{tab}_send_to_extras", min_width=60)
    panel.download = gr.File(label="Download", visible=False, elem_id=f"download_files_{tab}", interactive=False)
    panel.infotext = gr.Textbox(label="Generation parameters", lines=4, interactive=False, elem_id=f"{tab}_infotext")
    panel.info_html = gr.HTML(elem_id=f"html_info_{tab}")
    panel.result = gr.State(GenerationResult())
    panel.selected = gr.State(None)
    return panel


def save_selected(result: GenerationResult, selected: int | None, folder: Path) -> list[str]:
    """A1111's Save: write the selected image (or all, when none is selected) with its infotext."""
    if not result.images:
        raise ValueError("nothing to save: generate an image first")
    indices = [selected] if selected is not None and 0 <= selected < len(result.images) else range(len(result.images))
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d%H%M%S")
    paths = []
    for index in indices:
        path = folder / f"{stamp}-{index:03d}.png"
        path.write_bytes(encode_image(result.images[index], "png", result.infotexts[index] if index < len(result.infotexts) else ""))
        paths.append(str(path))
    return paths


def zip_images(result: GenerationResult, folder: Path) -> str:
    """All images of the last generation in one zip (the saved files when there are any)."""
    if not result.images:
        raise ValueError("nothing to zip: generate an image first")
    folder.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix="images-", suffix=".zip", dir=folder)
    os.close(handle)
    with zipfile.ZipFile(name, "w") as archive:
        existing = [path for path in result.saved_paths if Path(path).is_file()]
        if existing:
            for path in existing:
                archive.write(path, Path(path).name)
        else:
            for index, image in enumerate(result.images):
                text = result.infotexts[index] if index < len(result.infotexts) else ""
                archive.writestr(f"{index:05d}.png", encode_image(image, "png", text))
    return name


def open_folder(folder: Path) -> None:
    """Open `folder` in the system file manager (only offered when the server is bound to localhost)."""
    folder.mkdir(parents=True, exist_ok=True)
    if sys.platform == "win32":
        os.startfile(folder)  # noqa: S606 - a local folder the app owns
    elif sys.platform == "darwin":
        subprocess.Popen(["open", str(folder)])  # noqa: S603,S607
    else:
        subprocess.Popen(["xdg-open", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603,S607


def error_html(message: str) -> str:
    return f"<div class='error'>{html.escape(message)}</div>"
