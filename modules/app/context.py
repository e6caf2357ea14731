"""The app context: one object holding the options, paths, model manager and job queue.

Core code receives it explicitly; `modules.shared` is only a compatibility facade over it.
"""

from __future__ import annotations

import argparse
import logging
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modules.app.console_progress import ConsoleProgress
from modules.app.jobs import Job, JobQueue
from modules.app.options import Options
from modules.app.paths import Paths, build_paths, ensure_user_dirs
from modules.generation.params import Img2ImgParams, Txt2ImgParams
from modules.generation.results import Processed
from modules.generation.txt2img import GenerationContext, txt2img
from modules.models.manager import DevicePolicy, ModelManager
from modules.models.safe_load import CheckpointError
from modules.prompting.embeddings import EmbeddingDatabase

log = logging.getLogger(__name__)

VERSION = "v0.1.0"


@dataclass
class AppContext:
    """Everything a request handler needs. Built once at startup by `create_context`."""

    flags: argparse.Namespace
    paths: Paths
    options: Options
    models: ModelManager
    jobs: JobQueue
    version: str = VERSION
    demo_model: Path | None = None
    load_error: str | None = None
    embeddings: EmbeddingDatabase | None = None
    networks: object | None = None  # `NetworkManager`, see `network_manager()`
    scripts: Any = None  # `ScriptSystem` (modules/plugins/system.py), loaded by `create_context`
    ui_tab_providers: list[Any] = field(default_factory=list)  # callables → [(blocks, title, elem_id)]
    optimizers: list[Any] = field(default_factory=list)  # attention implementations (informational)

    def checkpoint_dirs(self) -> list[Path]:
        return self.models.checkpoint_dirs

    def ensure_model(self, override_settings: dict | None = None) -> None:
        """Load the checkpoint named by the settings (or a per-request override) if needed."""
        wanted = (override_settings or {}).get("sd_model_checkpoint") or self.options.sd_model_checkpoint or None
        vae = (override_settings or {}).get("sd_vae") or self.options.sd_vae
        prediction = self.options.sd_prediction_type
        self.models.load(wanted, vae=vae, prediction_type=None if prediction == "Automatic" else prediction)

    def switch_model(self, title: str) -> None:
        """Load `title` and remember it in the settings; on failure the old model stays loaded."""
        self.jobs.run(lambda job: self.models.load(title, vae=self.options.sd_vae), name="switch model")
        if self.models.info is not None:
            self.options.set("sd_model_checkpoint", self.models.info.title)
            self.options.save()

    def generation_context(self) -> GenerationContext:
        engine = self.models.require()
        self.attach_embeddings(engine)
        info = self.models.info
        return GenerationContext(
            engine=engine,
            options=self.options,
            outputs_root=self.paths.data_dir,
            model_name=info.model_name if info else "",
            model_hash=info.shorthash if info else None,
            vae_name=self.models.vae_name,
            vae_hash=self.models.vae_hash,
            version=self.version,
            demo_model=self.demo_model is not None and info is not None and info.filename == self.demo_model,
            networks=self.network_manager(),
        )

    def network_manager(self):
        """The LoRA library (models/Lora and --lora-dir) and its per-model appliers, made on first use."""
        if self.networks is None:
            from modules.networks.activation import NetworkManager
            from modules.networks.hypernetworks import HypernetworkSet
            from modules.networks.library import NetworkLibrary

            library = NetworkLibrary([self.paths.lora_dir], self.paths.data_dir / "cache-networks.json")
            self.networks = NetworkManager(library, HypernetworkSet(self.paths.models_dir / "hypernetworks"))
        return self.networks

    def attach_embeddings(self, engine, *, force: bool = False) -> EmbeddingDatabase:
        """Give `engine` the embeddings folder's textual inversions. The folder is rescanned when the
        model changed to one with other vector widths, when its files changed, or with `force`."""
        if self.embeddings is None:
            self.embeddings = EmbeddingDatabase(self.paths.embeddings_dir)
        if engine.embeddings is not self.embeddings:
            engine.use_embeddings(self.embeddings)
        engine.reload_embeddings(force=force)
        return self.embeddings

    def refresh_embeddings(self) -> EmbeddingDatabase | None:
        """Rescan the embeddings folder for the loaded model (the API's refresh-embeddings)."""
        engine = self.models.engine
        if engine is None:
            return self.embeddings
        return self.attach_embeddings(engine, force=True)

    def submit_txt2img(self, params: Txt2ImgParams, task_id: str | None = None, scripts: Any = None) -> tuple[Job, Future]:
        """Queue a txt2img job; returns the job (progress by `task_id`) and a future with its `Processed`."""
        return self._submit(txt2img, "txt2img", params, task_id, scripts)

    def run_txt2img(self, params: Txt2ImgParams, task_id: str | None = None, scripts: Any = None) -> Processed:
        """Queue a txt2img job and wait for it (the queue's single worker owns the model)."""
        return self.submit_txt2img(params, task_id, scripts)[1].result()

    def submit_img2img(self, params: Img2ImgParams, task_id: str | None = None, scripts: Any = None) -> tuple[Job, Future]:
        """Queue an img2img / inpainting job; the same per-job settings rules as `submit_txt2img`."""
        from modules.generation.img2img import img2img

        return self._submit(img2img, "img2img", params, task_id, scripts)

    def run_img2img(self, params: Img2ImgParams, task_id: str | None = None, scripts: Any = None) -> Processed:
        """Queue an img2img / inpainting job and wait for its `Processed`."""
        return self.submit_img2img(params, task_id, scripts)[1].result()

    def _submit(self, pipeline, name: str, params: Txt2ImgParams, task_id: str | None, scripts: Any) -> tuple[Job, Future]:
        """Queue `pipeline(params)` as one job.

        `override_settings` apply to this job only (a per-job copy of the options); with
        `override_settings_restore_afterwards` false they are written to the settings after the job.
        A checkpoint given as an override is swapped back to the settings' one when the job ends.
        """
        overrides = dict(params.override_settings or {})

        def work(job: Job) -> Processed:
            try:
                self.ensure_model(overrides)
                processed = self._generate(pipeline, params, scripts, job)
            finally:
                if overrides.get("sd_model_checkpoint") and params.override_settings_restore_afterwards:
                    self._restore_settings_model()
            if overrides and not params.override_settings_restore_afterwards:
                self.options.update(overrides)
                if "sd_model_checkpoint" in overrides and self.models.info is not None:
                    self.options.set("sd_model_checkpoint", self.models.info.title)
                self.options.save()
            return processed

        return self.jobs.submit(work, name=name, task_id=task_id)

    def _generate(self, pipeline, params: Txt2ImgParams, scripts: Any, job: Job) -> Processed:
        """Run `pipeline` with the loaded scripts (`scripts` is a `ScriptSelection` or None)."""
        if self.scripts is None:
            return pipeline(params, self.generation_context(), job)
        return self.scripts.run(params, scripts, self, job)

    def _restore_settings_model(self) -> None:
        try:
            self.ensure_model()
        except CheckpointError as error:
            log.error("could not reload the settings' checkpoint after the job: %s", error)


def create_context(flags: argparse.Namespace) -> AppContext:
    """Build paths, settings and the model manager from the command-line flags."""
    paths = build_paths(flags)
    ensure_user_dirs(paths)
    options = Options()
    options.load(paths.config_file)
    demo_path = None
    checkpoint_dirs = list(paths.checkpoint_dirs)
    if getattr(flags, "demo_model", False):
        demo_path = _build_demo_model(paths)
        checkpoint_dirs.append(demo_path.parent)
    policy = DevicePolicy.choose(flags.use_cpu, flags.no_half, flags.precision, getattr(flags, "no_half_vae", False))
    models = ModelManager(checkpoint_dirs, list(paths.vae_dirs), paths.cache_file, policy)
    options.infos["sd_vae"].choices = models.vae_choices
    context = AppContext(flags, paths, options, models, JobQueue(listeners=[ConsoleProgress()]), demo_model=demo_path)
    _load_scripts(context)
    if flags.ckpt:
        options.set("sd_model_checkpoint", str(Path(flags.ckpt).resolve()) if Path(flags.ckpt).exists() else flags.ckpt)
    try:
        if models.checkpoints:
            context.ensure_model()
            if models.info is not None:
                options.set("sd_model_checkpoint", models.info.title)
    except CheckpointError as error:
        context.load_error = str(error)
        log.error("%s", error)
    if not models.checkpoints:
        log.warning("no checkpoint found; put a .safetensors or .ckpt file into %s", paths.checkpoint_dirs[0])
    return context


def _load_scripts(context: AppContext) -> None:
    """Make the app reachable for extensions' compatibility imports, then load the scripts (a script
    that fails is logged and skipped inside; nothing here stops startup)."""
    from modules.plugins import runtime
    from modules.plugins.system import ScriptSystem

    runtime.set_context(context)
    context.scripts = ScriptSystem.load(context.paths, context.options, context.flags)
    from modules.plugins.callbacks import extension_ui_tabs, list_optimizers

    context.ui_tab_providers.append(extension_ui_tabs)
    context.optimizers = list_optimizers()


def _build_demo_model(paths: Paths) -> Path:
    """A tiny random SD1 checkpoint, built once into data_dir/tmp/demo-model/."""
    from modules.tiny_checkpoint import build_tiny_checkpoint

    target = paths.data_dir / "tmp" / "demo-model" / "demo-tiny-sd1.safetensors"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        build_tiny_checkpoint("sd1", target, seed=0)
    return target
