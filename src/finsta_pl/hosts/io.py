"""Enhanced-host checkpoints: what post-training hands to downstream tasks.

The file holds the host's config, its word list and its weights, nothing of Finsta: downstream fine-tuning
and inference run the host alone (graphs off).  Loading maps word embeddings *by word*, so a task whose
vocabulary differs (questions instead of captions) keeps every shared word's post-trained embedding.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from finsta_pl.errors import FinstaError
from finsta_pl.hosts.small_vlm import HostConfig, SmallVLM

_WORDS = "words.weight"


def export_host(host: SmallVLM, config: HostConfig, vocab: list[str], path: str | Path) -> Path:
    """Write ``{config, vocab, state_dict}`` to ``path`` (atomically: a temp file, then a rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    state = {k: v.detach().cpu() for k, v in host.state_dict().items()}
    torch.save({"config": asdict(config), "vocab": list(vocab), "state_dict": state}, tmp)
    tmp.replace(path)
    return path


def load_host_weights(host: SmallVLM, config: HostConfig, vocab: list[str], path: str | Path) -> dict[str, Any]:
    """Copy an exported host's weights into ``host``; returns ``{"words_copied", "words_new"}``."""
    path = Path(path)
    if not path.is_file():
        raise FinstaError(f"{path}: enhanced host checkpoint not found (run the post-training config first)")
    saved = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("dim", "heads", "video_layers", "text_layers", "fusion_layers", "patch_grid"):
        if saved["config"].get(key) != getattr(config, key):
            raise FinstaError(f"{path}: host {key}={saved['config'].get(key)} but this model has {getattr(config, key)}")
    state = dict(saved["state_dict"])
    old_words = state.pop(_WORDS)
    position = {w: i for i, w in enumerate(saved["vocab"])}
    pairs = [(i, position[w]) for i, w in enumerate(vocab) if w in position]
    with torch.no_grad():
        table = host.words.weight
        new, old = (torch.tensor(x, dtype=torch.long) for x in zip(*pairs)) if pairs else (torch.zeros(0, dtype=torch.long),) * 2
        table[new] = old_words[old].to(table.dtype)
    missing, unexpected = host.load_state_dict(state, strict=False)
    if set(missing) - {_WORDS} or unexpected:
        raise FinstaError(f"{path}: host weights do not fit (missing {missing}, unexpected {unexpected})")
    return {"words_copied": len(pairs), "words_new": len(vocab) - len(pairs)}
