"""The LoRA library: recursive scan, header metadata, side files, previews, hashes and the cache."""

from __future__ import annotations

import hashlib
import json
import struct
import time
from pathlib import Path

from PIL import Image

from modules.networks.library import NetworkLibrary, addnet_hash


def tiny_safetensors(path: Path, metadata: dict[str, str]) -> None:
    """A valid one-tensor safetensors file written byte by byte (fast enough for thousands)."""
    header = json.dumps({"__metadata__": metadata, "w": {"dtype": "F16", "shape": [1], "data_offsets": [0, 2]}}).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\x00\x3c")


def test_scan_reads_metadata_side_files_and_previews(tmp_path):
    root = tmp_path / "Lora"
    tiny_safetensors(root / "style" / "ink.safetensors", {"ss_output_name": "ink_v2", "ss_tag_frequency": '{"a": {"b": 2}}'})
    (root / "style" / "ink.json").write_text(json.dumps({"description": "ink <b>", "preferred weight": 0.8}))
    (root / "style" / "ink.civitai.info").write_text(json.dumps({"model": {"name": "Ink"}}))
    Image.new("RGB", (4, 4)).save(root / "style" / "ink.preview.png")
    tiny_safetensors(root / "plain.safetensors", {})
    (root / "notes.txt").write_text("not a network")
    library = NetworkLibrary([root, tmp_path / "missing"], tmp_path / "cache.json")
    names = [item.name for item in library.refresh()]
    assert names == ["ink", "plain"]
    ink = library.find("ink")
    assert library.find("ink_v2") is ink and ink.alias == "ink_v2"
    assert ink.metadata["ss_tag_frequency"] == {"a": {"b": 2}}
    assert ink.user_metadata["preferred weight"] == 0.8
    assert ink.civitai["model"]["name"] == "Ink"
    assert ink.preview == root / "style" / "ink.preview.png"
    assert library.find("plain").alias == "plain" and library.find("nothing") is None

    # A1111's addnet hash covers the tensor data only
    data = (root / "plain.safetensors").read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    assert addnet_hash(root / "plain.safetensors") == hashlib.sha256(data[8 + length :]).hexdigest()
    assert library.hash_of(library.find("plain")) == addnet_hash(root / "plain.safetensors")

    library.save_user_metadata(ink, {"activation text": "inky"})
    saved = json.loads((root / "style" / "ink.json").read_text())
    assert saved == {"description": "ink <b>", "preferred weight": 0.8, "activation text": "inky"}


def test_ten_thousand_files_are_listed_fast_from_the_cache(tmp_path):
    root = tmp_path / "Lora"
    for index in range(10_000):
        tiny_safetensors(root / f"group{index % 20}" / f"net{index:05d}.safetensors", {"ss_output_name": f"alias{index}"})
    cache = tmp_path / "cache.json"
    first = NetworkLibrary([root], cache)
    start = time.perf_counter()
    assert len(first.refresh()) == 10_000
    cold = time.perf_counter() - start
    assert first.metadata_reads == 10_000

    second = NetworkLibrary([root], cache)
    start = time.perf_counter()
    items = second.refresh()
    warm = time.perf_counter() - start
    assert second.metadata_reads == 0  # every header came from the cache
    assert len(items) == 10_000 and second.find("alias1234").name == "net01234"
    assert warm < 3.0, (cold, warm)

    # a changed file is read again, the others are not
    time.sleep(0.01)
    tiny_safetensors(root / "group0" / "net00000.safetensors", {"ss_output_name": "renamed"})
    second.refresh()
    assert second.metadata_reads == 1 and second.find("renamed").name == "net00000"


def test_lora_hashes_relink_a_renamed_file(tmp_path):
    from modules.networks.infotext import parse_lora_hashes, relink_prompt

    assert parse_lora_hashes('"ink: 0123456789ab, bad entry, b: ABCDEF012345"') == {"ink": "0123456789ab", "b": "abcdef012345"}
    root = tmp_path / "Lora"
    tiny_safetensors(root / "renamed_ink.safetensors", {})
    library = NetworkLibrary([root])
    library.refresh()
    digest = library.hash_of(library.find("renamed_ink"))[:12]
    prompt = "cat <lora:ink:0.7> <lora:other:1> <hypernet:ink:1>"
    assert (
        relink_prompt(prompt, f"ink: {digest}, other: 000000000000", library)
        == "cat <lora:renamed_ink:0.7> <lora:other:1> <hypernet:ink:1>"
    )
