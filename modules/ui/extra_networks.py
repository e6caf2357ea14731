"""The extra-networks panel under the prompt: tabs Textual Inversion, Hypernetworks, Checkpoints and
Lora, each a page of cards (preview, name, description) with search and sort. Clicking a card inserts
its tag with the default (or the user's preferred) weight into the prompt, or removes it when it is
already there, and shows the file's metadata; for LoRA files a small editor saves user metadata
(description, activation text, preferred weight) as ``<name>.json`` beside the file.

Everything a card shows comes from file names and file contents, so all of it is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

TABS = ("Textual Inversion", "Hypernetworks", "Checkpoints", "Lora")
SORT_KEYS = ("Name", "Date modified", "Path")
CARDS_PER_PAGE = 24
PREVIEW_SIZE = 96
DEFAULT_MULTIPLIER = 1.0


@dataclass
class NetworkCard:
    """One card: what it shows, what clicking it inserts, and what the metadata view lists."""

    name: str
    insert: str  # text added to the prompt on click
    path: Path | None = None
    description: str = ""
    mtime: float = 0.0
    preview: Path | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    search_terms: str = ""
    select: Callable[[], None] | None = None  # instead of inserting text (checkpoint cards load the model)

    def matches(self, query: str) -> bool:
        text = f"{self.name} {self.path or ''} {self.search_terms}".lower()
        return all(word in text for word in query.lower().split())


def lora_tag(name: str, user_metadata: dict[str, Any]) -> str:
    """``<lora:name:weight>`` with the user's preferred weight, plus their activation text."""
    weight = user_metadata.get("preferred weight") or DEFAULT_MULTIPLIER
    try:
        weight = float(weight)
    except (TypeError, ValueError):
        weight = DEFAULT_MULTIPLIER
    tag = f"<lora:{name}:{weight:g}>"
    activation = str(user_metadata.get("activation text") or "").strip()
    return f"{tag} {activation}" if activation else tag


def toggle_in_prompt(prompt: str, text: str, separator: str = " ") -> str:
    """Append `text` to `prompt`, or remove it when the prompt already contains it (A1111's click)."""
    if text in prompt:
        return " ".join(prompt.replace(text, "").split()) if prompt.strip() != text else ""
    if not prompt.strip():
        return text
    return prompt.rstrip() + separator + text


def filter_and_sort(cards: list[NetworkCard], query: str, sort: str, descending: bool) -> list[NetworkCard]:
    """Cards matching every word of `query`, sorted by name, date or path."""
    keys: dict[str, Callable[[NetworkCard], Any]] = {
        "Name": lambda card: card.name.lower(),
        "Date modified": lambda card: card.mtime,
        "Path": lambda card: str(card.path or "").lower(),
    }
    if sort not in keys:
        raise ValueError(f"sort must be one of {SORT_KEYS}, got {sort!r}")
    return sorted((card for card in cards if card.matches(query or "")), key=keys[sort], reverse=descending)


def _thumbnail(path: Path | None) -> str:
    """A small inline (data URI) preview, or "" when there is none or it cannot be read."""
    if path is None:
        return ""
    try:
        from PIL import Image

        with Image.open(path) as image:
            image.thumbnail((PREVIEW_SIZE, PREVIEW_SIZE))
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, format="JPEG", quality=80)
    except (OSError, ValueError):
        return ""
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def card_html(card: NetworkCard) -> str:
    """The card's HTML; the name, description and preview address are escaped."""
    preview = _thumbnail(card.preview)
    image = (
        f'<img class="extra-network-preview" src="{html.escape(preview)}" alt="">'
        if preview
        else '<div class="extra-network-nopreview"></div>'
    )
    description = f'<div class="extra-network-description">{html.escape(card.description)}</div>' if card.description else ""
    return f'<div class="extra-network-card" title="{html.escape(str(card.path or card.name))}">{image}<div class="extra-network-name">{html.escape(card.name)}</div>{description}</div>'


# ---- card sources -----------------------------------------------------------------------------------
def lora_cards(library) -> list[NetworkCard]:
    """Cards of a `NetworkLibrary` (scanned on first use)."""
    if not library.files:
        library.refresh()
    cards = []
    for item in library.items():
        description = str(item.user_metadata.get("description") or item.civitai.get("description") or "")
        terms = " ".join([item.alias, description, " ".join(str(key) for key in (item.metadata.get("ss_tag_frequency") or {}))])
        metadata = {"file": str(item.path), "alias": item.alias, **item.metadata, "user metadata": item.user_metadata}
        cards.append(
            NetworkCard(
                item.name, lora_tag(item.name, item.user_metadata), item.path, description, item.mtime, item.preview, metadata, terms
            )
        )
    return cards


def _folder_cards(folder: Path | None, suffixes: tuple[str, ...], insert: Callable[[str], str]) -> list[NetworkCard]:
    if folder is None or not folder.is_dir():
        return []
    cards = []
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() in suffixes and path.is_file():
            preview = next(
                (candidate for candidate in (path.with_suffix(".preview.png"), path.with_suffix(".png")) if candidate.is_file()), None
            )
            cards.append(
                NetworkCard(path.stem, insert(path.stem), path, mtime=path.stat().st_mtime, preview=preview, metadata={"file": str(path)})
            )
    return cards


@dataclass
class ExtraNetworksSource:
    """Where each tab's cards come from (callables, so that Refresh rescans)."""

    providers: dict[str, Callable[[], list[NetworkCard]]]
    save_user_metadata: Callable[[str, dict[str, Any]], None] | None = None

    def cards(self, tab: str) -> list[NetworkCard]:
        provider = self.providers.get(tab)
        return provider() if provider else []

    @classmethod
    def from_context(cls, context) -> ExtraNetworksSource:
        """Cards from the app context: embeddings folder, models/hypernetworks, checkpoints, LoRA library."""
        library = context.network_manager().library

        def checkpoints() -> list[NetworkCard]:
            context.models.refresh()
            return [
                NetworkCard(
                    info.model_name,
                    info.title,
                    info.filename,
                    mtime=info.filename.stat().st_mtime if info.filename.exists() else 0.0,
                    metadata={"title": info.title, "file": str(info.filename)},
                    select=lambda title=info.title: context.switch_model(title),
                )
                for info in context.models.checkpoints
            ]

        def save(name: str, values: dict[str, Any]) -> None:
            item = library.find(name)
            if item is None:
                raise ValueError(f"no LoRA named {name!r}")
            library.save_user_metadata(item, values)

        return cls(
            {
                "Textual Inversion": lambda: _folder_cards(
                    context.paths.embeddings_dir, (".pt", ".safetensors", ".bin"), lambda name: name
                ),
                "Hypernetworks": lambda: _folder_cards(
                    context.paths.models_dir / "hypernetworks", (".pt",), lambda name: f"<hypernet:{name}:1>"
                ),
                "Checkpoints": checkpoints,
                "Lora": lambda: (library.refresh(), lora_cards(library))[1],
            },
            save,
        )


# ---- layout -----------------------------------------------------------------------------------------
@dataclass
class ExtraNetworksPanel:
    """The panel's components per tab (for events and tests)."""

    tabs: dict[str, dict[str, Any]] = field(default_factory=dict)


def build_extra_networks_panel(tab: str, prompt_box: Any, source: ExtraNetworksSource) -> ExtraNetworksPanel:
    """Lay out and wire the panel; call inside a Blocks context right under the prompt row. The cards
    are read when the panel is opened and on Refresh, search and sort."""
    panel = ExtraNetworksPanel()
    with gr.Accordion("Extra networks", open=False, elem_id=f"{tab}_extra_networks") as accordion, gr.Tabs():
        for title in TABS:
            with gr.Tab(title, elem_id=f"{tab}_extra_{title.lower().replace(' ', '_')}"):
                panel.tabs[title] = _build_tab(tab, title, prompt_box, source)
    for parts in panel.tabs.values():
        accordion.expand(
            parts["show"], inputs=[parts["search"], parts["sort"], parts["descending"]], outputs=[parts["cards"], parts["shown"]]
        )
    return panel


def _build_tab(tab: str, title: str, prompt_box: Any, source: ExtraNetworksSource) -> dict[str, Any]:
    slug = f"{tab}_extra_{title.lower().replace(' ', '_')}"
    with gr.Row():
        search = gr.Textbox(label="Search", elem_id=f"{slug}_search", scale=4)
        sort = gr.Dropdown(list(SORT_KEYS), value="Name", label="Sort", elem_id=f"{slug}_sort", scale=1)
        descending = gr.Checkbox(label="Descending", value=False, elem_id=f"{slug}_descending", scale=1)
        refresh = gr.Button("Refresh", elem_id=f"{slug}_refresh", scale=0)
    shown = gr.State([])
    cards = gr.Dataset(
        components=["html"],
        samples=[],
        type="index",
        samples_per_page=CARDS_PER_PAGE,
        layout="gallery",
        elem_id=f"{slug}_cards",
        label=title,
    )
    metadata = gr.JSON(label="Metadata", elem_id=f"{slug}_metadata")
    parts: dict[str, Any] = {
        "search": search,
        "sort": sort,
        "descending": descending,
        "refresh": refresh,
        "cards": cards,
        "metadata": metadata,
    }
    editor: list[Any] = []
    if title == "Lora":
        with gr.Accordion("Edit user metadata", open=False):
            selected = gr.Textbox(label="Name", interactive=False, elem_id=f"{slug}_edit_name")
            description = gr.Textbox(label="Description", lines=2, elem_id=f"{slug}_edit_description")
            activation = gr.Textbox(label="Activation text", elem_id=f"{slug}_edit_activation")
            weight = gr.Number(label="Preferred weight", value=DEFAULT_MULTIPLIER, elem_id=f"{slug}_edit_weight")
            save = gr.Button("Save", elem_id=f"{slug}_edit_save")
            status = gr.Markdown(elem_id=f"{slug}_edit_status")
        editor = [selected, description, activation, weight]
        parts.update(editor_name=selected, description=description, activation=activation, weight=weight, save=save, status=status)

    def show(query: str, order: str, down: bool):
        chosen = filter_and_sort(source.cards(title), query, order, down)
        return gr.Dataset(components=["html"], samples=[[card_html(card)] for card in chosen]), [card.name for card in chosen]

    def click(index: int | None, names: list[str], prompt: str):
        found = {card.name: card for card in source.cards(title)} if index is not None and 0 <= index < len(names) else {}
        card = found.get(names[index]) if found else None
        if card is None:
            return (prompt, None, *([gr.update()] * len(editor)))
        user = card.metadata.get("user metadata") or {}
        fields = [
            card.name,
            user.get("description", ""),
            user.get("activation text", ""),
            user.get("preferred weight") or DEFAULT_MULTIPLIER,
        ]
        if card.select is not None:
            card.select()
            return (prompt, card.metadata, *fields[: len(editor)])
        return (toggle_in_prompt(prompt, card.insert), card.metadata, *fields[: len(editor)])

    parts.update(show=show, click=click, shown=shown)
    for trigger in (search.submit, sort.change, descending.change, refresh.click):
        trigger(show, inputs=[search, sort, descending], outputs=[cards, shown])
    cards.click(click, inputs=[cards, shown, prompt_box], outputs=[prompt_box, metadata, *editor])
    if editor and source.save_user_metadata is not None:

        def save_metadata(name: str, text: str, activation_text: str, preferred: float | None) -> str:
            if not name:
                return "Select a card first."
            source.save_user_metadata(name, {"description": text, "activation text": activation_text, "preferred weight": preferred})
            return f"Saved metadata of {html.escape(name)}."

        parts["save"].click(save_metadata, inputs=editor, outputs=[parts["status"]])
    return parts
