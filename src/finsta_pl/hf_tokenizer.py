"""Sub-word text encoding for hosts with their own tokenizer (a `transformers` checkpoint folder).

It speaks the same interface as :class:`finsta_pl.text.WordVocab` (``encode`` with character offsets,
``encode_label``, ``info``), so DataModules, scene-graph span mapping and collation do not care which one runs.
One convention differs from the checkpoint: ids are shifted by one, so ``0`` pads for every host (the batch
and the host protocol rely on it) while a CLIP vocabulary uses ``0`` for a real token; the host adapter
shifts them back.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from finsta_pl.errors import FinstaError

#: ids in batches are the checkpoint's ids plus this (``0`` is padding).
ID_SHIFT = 1


def require_transformers() -> Any:
    """The ``transformers`` module, or a clear error naming the extra that installs it."""
    try:
        import transformers
    except ImportError:
        raise FinstaError("this host needs `transformers`: pip install 'finsta-pl[hf]'") from None
    transformers.utils.logging.disable_progress_bar()
    return transformers


class HFTokenizer:
    """A checkpoint's tokenizer (fast, for character offsets) behind the :class:`WordVocab` interface."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(Path(path).expanduser())
        if not Path(self.path).is_dir():
            raise FinstaError(f"{self.path}: tokenizer folder not found (a transformers checkpoint, e.g. "
                              "`hf download openai/clip-vit-base-patch32 --local-dir <folder>`)")
        # DataLoader workers are forked after the main process has tokenized: the Rust tokenizer's own thread
        # pool would then deadlock-guard and warn in every worker.  Workers are the parallelism here.
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        transformers = require_transformers()
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(self.path)
        if not getattr(self.tokenizer, "is_fast", False):
            raise FinstaError(f"{self.path}: needs a fast tokenizer (tokenizer.json) for character offsets")
        self._warned = False

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "_warned": self._warned}  # workers reload from disk: cheap and picklable

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"])  # type: ignore[misc]
        self._warned = state["_warned"]

    def __len__(self) -> int:
        return len(self.tokenizer) + ID_SHIFT

    def info(self) -> dict[str, Any]:
        """What a model must know: where the tokenizer lives and its size (checked against the host)."""
        return {"tokenizer": self.path, "tokenizer_size": len(self.tokenizer)}

    def encode(self, text: str, max_len: int) -> tuple[list[int], list[tuple[int, int]]]:
        """Shifted ids with the checkpoint's special tokens (at most ``max_len``) and each token's character
        span (special tokens: ``(-1, -1)``)."""
        enc = self.tokenizer(text, truncation=True, max_length=max_len, return_offsets_mapping=True,
                             return_special_tokens_mask=True)
        full = len(enc["input_ids"]) == max_len  # only then can anything have been cut: check once more
        if full and not self._warned and len(self.tokenizer(text)["input_ids"]) > max_len:
            warnings.warn(f"text truncated to {max_len} tokens: {text[:60]!r}...", stacklevel=2)
            self._warned = True
        ids = [i + ID_SHIFT for i in enc["input_ids"]]
        spans = [(-1, -1) if special else (int(s), int(e))
                 for (s, e), special in zip(enc["offset_mapping"], enc["special_tokens_mask"])]
        return ids, spans

    def decode(self, ids: list[int]) -> str:
        """Text of shifted ids (pads and special tokens dropped)."""
        return self.tokenizer.decode([i - ID_SHIFT for i in ids if i >= ID_SHIFT], skip_special_tokens=True).strip()

    def encode_label(self, label: str) -> list[int]:
        """Shifted ids of a scene-graph label, without special tokens."""
        return [i + ID_SHIFT for i in self.tokenizer(label, add_special_tokens=False)["input_ids"]]
