"""``finsta-pl tiny-clip OUT``: write a tiny, randomly initialised `transformers` CLIP checkpoint folder.

It has everything a real one has (``config.json``, weights, a byte-level BPE tokenizer with CLIP's special
tokens), only small: the CLIP4Clip host and its tokenizer load it exactly as they load
``openai/clip-vit-base-patch32``.  For CPU tests and for trying the CLIP4Clip configs without a download.
The tokenizer's merges spell out whole words of the given texts (plus the scene-graph label words); any other
word falls back to characters, as BPE does.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Iterable

from finsta_pl.hf_tokenizer import require_transformers
from finsta_pl.text import GRAPH_WORDS

_BOS, _EOS = "<|startoftext|>", "<|endoftext|>"


def _bpe_files(words: Iterable[str]) -> tuple[dict[str, int], list[str]]:
    """CLIP-format vocabulary and merges: all bytes, their word-final forms, then left-to-right word merges."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    byte_chars = list(bytes_to_unicode().values())
    vocab = byte_chars + [c + "</w>" for c in byte_chars]
    known, merges, seen = set(vocab), [], set()
    for word in dict.fromkeys(words):
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        current = pieces[0]
        for piece in pieces[1:]:
            rule = f"{current} {piece}"
            if rule not in seen:
                seen.add(rule)
                merges.append(rule)
            current += piece
            if current not in known:
                known.add(current)
                vocab.append(current)
    vocab += [_BOS, _EOS]
    return {tok: i for i, tok in enumerate(vocab)}, merges


def write_tiny_clip(out: str | Path, texts: Iterable[str] = (), width: int = 64, layers: int = 2,
                    image_size: int = 32, patch_size: int = 8) -> Path:
    """Write the checkpoint folder ``out`` (config, safetensors weights, tokenizer files); returns it."""
    transformers = require_transformers()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    words = [w for t in texts for w in re.findall(r"[a-z]+", t.lower())] + list(GRAPH_WORDS)
    vocab, merges = _bpe_files(words)
    (out / "vocab.json").write_text(json.dumps(vocab))
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    tower = dict(hidden_size=width, intermediate_size=2 * width, num_hidden_layers=layers,
                 num_attention_heads=max(width // 32, 1))
    config = transformers.CLIPConfig(
        text_config=dict(tower, vocab_size=len(vocab), max_position_embeddings=128, bos_token_id=vocab[_BOS],
                         eos_token_id=vocab[_EOS], pad_token_id=vocab[_EOS]),
        vision_config=dict(tower, image_size=image_size, patch_size=patch_size),
        projection_dim=width,
    )
    transformers.CLIPModel(config).save_pretrained(out)
    tokenizer = transformers.AutoTokenizer.from_pretrained(out)
    tokenizer.model_max_length = 128
    tokenizer.save_pretrained(out)
    return out


def main(argv: list[str]) -> int:
    """CLI: ``finsta-pl tiny-clip OUT [--text FILE ...] [--width 64] [--layers 2] [--image-size 32]``."""
    parser = argparse.ArgumentParser(prog="finsta-pl tiny-clip", description=__doc__)
    parser.add_argument("out")
    parser.add_argument("--text", action="append", default=[], help="text file(s) whose words get BPE merges")
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--patch-size", type=int, default=8)
    args = parser.parse_args(argv)
    texts = [Path(f).read_text(errors="replace") for f in args.text]
    out = write_tiny_clip(args.out, texts, args.width, args.layers, args.image_size, args.patch_size)
    print(f"tiny CLIP checkpoint written to {out}")
    return 0
