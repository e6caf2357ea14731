"""The LoRA side of infotexts: A1111's ``Lora hashes`` field and relinking pasted tags by hash.

A pasted infotext keeps its ``<lora:name:...>`` tags in the prompt. When ``name`` is not in the local
library but a file with the same short hash is (the user renamed it), the tag is rewritten to that
file's name, as A1111 does on paste.
"""

from __future__ import annotations

import re

from modules.networks.library import NetworkLibrary
from modules.networks.tags import TAG_PATTERN

HASH_ENTRY = re.compile(r"\s*([^:,]+?)\s*:\s*([0-9a-fA-F]+)\s*")


def parse_lora_hashes(value: str) -> dict[str, str]:
    """``"a: 0123456789ab, b: ..."`` → {"a": "0123456789ab", ...}; malformed entries are ignored."""
    hashes: dict[str, str] = {}
    for entry in value.strip().strip('"').split(","):
        match = HASH_ENTRY.fullmatch(entry)
        if match:
            hashes[match[1]] = match[2].lower()
    return hashes


def relink_prompt(prompt: str, lora_hashes: str, library: NetworkLibrary) -> str:
    """Rename tags whose network is missing locally to the local file with the recorded hash (only
    files whose hash is already known are considered; hashing the whole library would be slow)."""
    hashes = parse_lora_hashes(lora_hashes)
    if not hashes:
        return prompt
    by_hash = {item.shorthash: item.name for item in library.items() if item.shorthash}

    def rename(match: re.Match) -> str:
        if match[1] not in ("lora", "lyco"):
            return match[0]
        name, separator, rest = match[2].partition(":")
        if library.find(name) is not None or name not in hashes:
            return match[0]
        local = by_hash.get(hashes[name][:12])
        return match[0] if local is None else f"<{match[1]}:{local}{separator}{rest}>"

    return TAG_PATTERN.sub(rename, prompt)
