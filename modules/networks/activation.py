"""The prompt stage of a generation: strip network tags, merge the first prompt's networks into the
model, and say what to record in the infotext (``Lora hashes``) and the result's comments."""

from __future__ import annotations

import contextlib
import weakref
from dataclasses import dataclass, field
from typing import Any

from modules.networks.apply import NetworkApplier, NetworkRequest
from modules.networks.library import NetworkLibrary
from modules.networks.tags import NETWORK_KINDS, TAG_PATTERN, NetworkTag, TagError, parse_tag, strip_prompts


@dataclass
class PromptNetworks:
    """Prompts to encode (tags removed), infotext fields and comments for the result."""

    prompts: list[str]
    infotext: dict[str, Any] = field(default_factory=dict)
    comments: list[str] = field(default_factory=list)


def _infotext_name(name: str) -> str:
    return name.replace(":", "").replace(",", "")


class NetworkManager:
    """One library of LoRA files and, per loaded model (engine), the applier that merges them."""

    def __init__(self, library: NetworkLibrary, hypernetworks: Any = None) -> None:
        self.library = library
        self.hypernetworks = hypernetworks
        self._appliers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def applier_for(self, engine: Any) -> NetworkApplier:
        """The applier of `engine`'s model (made on first use)."""
        if engine not in self._appliers:
            checkpoint = engine.checkpoint
            self._appliers[engine] = NetworkApplier(checkpoint.unet, list(checkpoint.text_encoders))
        return self._appliers[engine]

    def activate(self, engine: Any, tags: list[NetworkTag]) -> PromptNetworks:
        """Merge the LoRA tags' files into `engine`'s model (restoring whatever was merged before)."""
        result = PromptNetworks([])
        requests: list[NetworkRequest] = []
        missing: list[str] = []
        files = {}
        if tags and not self.library.files:
            self.library.refresh()
        for tag in (tag for tag in tags if tag.is_lora):
            item = self.library.find(tag.name)
            if item is None:
                self.library.refresh()
                item = self.library.find(tag.name)
            if item is None:
                missing.append(tag.name)
                continue
            files[tag.name] = item
            requests.append(NetworkRequest(tag.name, item.path, tag.te_multiplier, tag.unet_multiplier, tag.dyn_dim))
        report = self.applier_for(engine).apply(requests)
        if missing:
            result.comments.append("Networks not found: " + ", ".join(missing))
        for name, reason in report.skipped.items():
            result.comments.append(f"Network {name} skipped: {reason}")
        hashes = []
        for name in report.applied:
            with contextlib.suppress(OSError):  # a file removed since it was merged has no hash to record
                hashes.append(f"{_infotext_name(name)}: {self.library.hash_of(files[name])[:12]}")
        if hashes:
            result.infotext["Lora hashes"] = ", ".join(hashes)
        if self.hypernetworks is not None:
            hyper = self.hypernetworks.activate(engine, [tag for tag in tags if tag.kind == "hypernet"])
            result.infotext.update(hyper.infotext)
            result.comments.extend(hyper.comments)
        elif any(tag.kind == "hypernet" for tag in tags):
            result.comments.append("Hypernetworks not found: " + ", ".join(tag.name for tag in tags if tag.kind == "hypernet"))
        return result


def prepare_prompt_networks(manager: NetworkManager | None, engine: Any, prompts: list[str]) -> PromptNetworks:
    """Called once per generation at the prompt stage, before any prompt is encoded.

    Removes network tags from every prompt and activates the FIRST prompt's networks for the whole
    generation (A1111's rule); with no manager the tags are only removed. A tag that cannot be read
    is reported in the comments and ignored; the generation still runs."""
    comments: list[str] = []
    try:
        stripped, tags = strip_prompts(prompts)
    except TagError as error:
        comments.append(str(error))
        stripped, tags = _strip_readable(prompts)
    if manager is None:
        result = PromptNetworks(stripped)
        if tags:
            result.comments.append("Networks not found: " + ", ".join(tag.name for tag in tags))
    else:
        result = manager.activate(engine, tags)
        result.prompts = stripped
    result.comments[:0] = comments
    return result


def _strip_readable(prompts: list[str]) -> tuple[list[str], list[NetworkTag]]:
    """Like `strip_prompts`, but a tag that cannot be read is dropped instead of failing."""
    stripped: list[str] = []
    first: list[NetworkTag] = []
    for index, prompt in enumerate(prompts):
        tags: list[NetworkTag] = []

        def take(match, tags=tags):
            if match[1] not in NETWORK_KINDS:
                return match[0]
            with contextlib.suppress(TagError):
                tags.append(parse_tag(match[1], match[2]))
            return ""

        stripped.append(TAG_PATTERN.sub(take, prompt))
        if index == 0:
            first = tags
    return stripped, first


def strip_network_tags(prompts: list[str]) -> list[str]:
    """The prompts without network tags (never fails: unreadable tags are dropped too)."""
    return _strip_readable(prompts)[0]
