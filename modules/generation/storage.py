"""Where a generation's images and grids go: A1111's output folders, day subfolders and file names."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from modules.app.options import Options
from modules.imaging.filenames import FilenameContext, output_directory
from modules.imaging.saving import save_image

if TYPE_CHECKING:
    from modules.generation.params import Txt2ImgParams
    from modules.generation.txt2img import GenerationContext


class OutputWriter:
    """Saves samples and grids of one job under the folders the settings name (relative to `root`)."""

    def __init__(self, options: Options, root: Path, *, kind: str, job_timestamp: str) -> None:
        self.options = options
        self.root = root
        self.kind = kind
        self.job_timestamp = job_timestamp

    def _folder(self, specific_key: str, general_key: str) -> Path:
        folder = Path(self.options.get(general_key) or self.options.get(specific_key))
        return folder if folder.is_absolute() else self.root / folder

    def _context(self, params: Txt2ImgParams, seed: int, prompt: str, index: int, generation: GenerationContext) -> FilenameContext:
        return FilenameContext(
            prompt=prompt,
            negative_prompt=params.negative_prompt,
            styles=tuple(params.styles),
            seed=seed,
            steps=params.steps,
            cfg_scale=params.cfg_scale,
            width=params.width,
            height=params.height,
            sampler_name=params.sampler_name,
            scheduler=params.scheduler,
            model_name=generation.model_name,
            model_hash=generation.model_hash,
            batch_index=index % params.batch_size,
            batch_size=params.batch_size,
            iteration=index // params.batch_size,
            n_iter=params.n_iter,
            job_timestamp=self.job_timestamp,
        )

    def save_sample(
        self, image: Image.Image, infotext: str, params: Txt2ImgParams, seed: int, prompt: str, index: int, generation: GenerationContext
    ) -> Path:
        """Save one generated image with its infotext; returns the file written."""
        context = self._context(params, seed, prompt, index, generation)
        folder = self._folder(f"outdir_{self.kind}_samples", "outdir_samples")
        if self.options.save_to_dirs:
            folder = output_directory(folder, context, self.options.directories_filename_pattern or "[date]")
        return save_image(
            image,
            folder,
            context=context,
            pattern=self.options.samples_filename_pattern,
            extension=self.options.samples_format,
            infotext=infotext if self.options.enable_pnginfo else None,
            add_number=self.options.save_images_add_number,
            save_txt=self.options.save_txt,
            quality=int(self.options.jpeg_quality),
        )

    def save_grid(self, grid: Image.Image, infotext: str, params: Txt2ImgParams, seed: int, generation: GenerationContext) -> Path:
        """Save a batch grid as A1111 does: `grid-NNNN` names in the grids folder."""
        context = self._context(params, seed, params.prompt, 0, generation)
        folder = self._folder(f"outdir_{self.kind}_grids", "outdir_grids")
        if self.options.grid_save_to_dirs:
            folder = output_directory(folder, context, self.options.directories_filename_pattern or "[date]")
        return save_image(
            grid,
            folder,
            context=context,
            pattern="[none]",
            basename="grid",
            extension=self.options.grid_format,
            infotext=infotext if self.options.enable_pnginfo else None,
            add_number=True,
            quality=int(self.options.jpeg_quality),
        )
