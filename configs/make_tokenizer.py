"""Generate the bundled CLIP BPE tokenizer files from OpenAI's merge list.

The web UI never downloads anything from a model hub, so the tokenizer files
that Stable Diffusion's text encoders need are generated once and kept in
``configs/tokenizers/``. Their single source is ``bpe_simple_vocab_16e6.txt.gz``
(OpenAI CLIP's BPE merge list, also shipped inside the ``open-clip-torch``
wheel on PyPI). To regenerate::

    pip download --no-deps open-clip-torch -d /tmp/oc
    python configs/make_tokenizer.py /tmp/oc/open_clip_torch-*.whl

The argument may be the wheel or the extracted ``.txt.gz``. The script writes
two folders that differ only in the padding token:

* ``clip``: pads with ``<|endoftext|>`` (SD1.x and SDXL's first tokenizer),
* ``openclip``: pads with ``!`` (SD2.x and SDXL's second tokenizer).

Vocabulary layout, as CLIP defines it (49408 entries): the 256 byte-level
unicode characters, the same characters with ``</w>`` appended, the 48894 merges
joined, then ``<|startoftext|>`` and ``<|endoftext|>``.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import zipfile
from pathlib import Path

MERGE_COUNT = 49152 - 256 - 2
START_TOKEN = "<|startoftext|>"
END_TOKEN = "<|endoftext|>"
VOCAB_SIZE = 49408
OUTPUT_ROOT = Path(__file__).resolve().parent / "tokenizers"
PAD_TOKENS = {"clip": END_TOKEN, "openclip": "!"}


def bytes_to_unicode() -> dict[int, str]:
    """Map every byte to a printable unicode character (GPT-2/CLIP byte-level BPE)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return {byte: chr(code) for byte, code in zip(printable, codes, strict=True)}


def read_merge_lines(source: Path) -> list[str]:
    """Return the merge lines (without the first header line) from a wheel or .txt.gz."""
    if source.suffix == ".whl":
        with zipfile.ZipFile(source) as wheel:
            names = [n for n in wheel.namelist() if n.endswith("bpe_simple_vocab_16e6.txt.gz")]
            if not names:
                raise SystemExit(f"{source}: no bpe_simple_vocab_16e6.txt.gz inside")
            compressed = wheel.read(names[0])
        text = gzip.GzipFile(fileobj=io.BytesIO(compressed)).read().decode("utf-8")
    else:
        with gzip.open(source, "rt", encoding="utf-8") as handle:
            text = handle.read()
    lines = text.split("\n")
    return lines[1 : MERGE_COUNT + 1]


def build_vocab(merge_lines: list[str]) -> dict[str, int]:
    """Build CLIP's token -> id table from the merge lines."""
    characters = list(bytes_to_unicode().values())
    tokens = characters + [c + "</w>" for c in characters]
    tokens += ["".join(line.split()) for line in merge_lines]
    tokens += [START_TOKEN, END_TOKEN]
    if len(tokens) != VOCAB_SIZE or len(set(tokens)) != VOCAB_SIZE:
        raise SystemExit(f"unexpected vocabulary size {len(tokens)}")
    return {token: index for index, token in enumerate(tokens)}


def tokenizer_config(pad_token: str) -> dict:
    """tokenizer_config.json contents for a CLIPTokenizer with the given pad token."""
    return {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": 77,
        "do_lower_case": True,
        "errors": "replace",
        "bos_token": START_TOKEN,
        "eos_token": END_TOKEN,
        "unk_token": END_TOKEN,
        "pad_token": pad_token,
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
    }


def write_folder(folder: Path, vocab: dict[str, int], merge_lines: list[str], pad_token: str) -> None:
    """Write vocab.json, merges.txt and the two config files into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merge_lines) + "\n", encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config(pad_token), indent=2) + "\n", encoding="utf-8")
    special = {"bos_token": START_TOKEN, "eos_token": END_TOKEN, "unk_token": END_TOKEN, "pad_token": pad_token}
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="open-clip-torch wheel or bpe_simple_vocab_16e6.txt.gz")
    parser.add_argument("--out", type=Path, default=OUTPUT_ROOT, help="folder receiving clip/ and openclip/")
    arguments = parser.parse_args()
    merge_lines = read_merge_lines(arguments.source)
    vocab = build_vocab(merge_lines)
    for name, pad_token in PAD_TOKENS.items():
        write_folder(arguments.out / name, vocab, merge_lines, pad_token)
        print(f"wrote {arguments.out / name}")


if __name__ == "__main__":
    main()
