"""The host protocol (docs/DESIGN-NOTES.md §6): what Finsta needs from a video-language model to plug into it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn


@dataclass
class HostConfig:
    """Which host and its sizes.  ``name``: ``small_vlm`` (built in; ``dim`` .. ``patch_grid`` size it) or
    ``clip4clip`` (a `transformers` CLIP: the folder ``checkpoint``, or a randomly initialised one from the
    ``CLIPConfig`` arguments in ``clip_config``; its width is the checkpoint's ``projection_dim``).  ``heads``,
    ``fusion_layers`` and ``dropout`` size the fusion of either.  ``init_from``: an enhanced host exported by
    post-training (``hosts/io.py``)."""

    name: str = "small_vlm"
    dim: int = 128
    heads: int = 4
    video_layers: int = 2
    text_layers: int = 2
    fusion_layers: int = 1
    patch_grid: int = 4
    max_frames: int = 64
    max_text_len: int = 128
    dropout: float = 0.1
    init_from: str | None = None
    checkpoint: str | None = None
    clip_config: dict[str, Any] | None = None


@dataclass
class VideoFeatures:
    """``pooled [B, d]``; ``frames [B, T, d]`` frame tokens; ``maps [B, T, d, h, w]`` frame feature maps
    (for RoI pooling of DSG nodes); ``tokens [B, S, d]`` the tokens cross-modal fusion attends to."""

    pooled: Tensor
    frames: Tensor
    maps: Tensor
    tokens: Tensor

    def select(self, index: Tensor) -> "VideoFeatures":
        """The features of clips ``index`` (e.g. each text's clip, to pair several texts with one clip)."""
        return VideoFeatures(self.pooled[index], self.frames[index], self.maps[index], self.tokens[index])


@dataclass
class TextFeatures:
    """``pooled [B, d]``; ``tokens [B, L, d]``; ``mask [B, L]`` true on real tokens."""

    pooled: Tensor
    tokens: Tensor
    mask: Tensor


class Host(nn.Module):
    """A video-language model Finsta can enhance: two encoders, an optional fusion, and its width ``dim``."""

    dim: int
    config: HostConfig
    #: config fields that change weight shapes: an exported host loads only where they agree.
    shape_keys: tuple[str, ...] = ()

    def encode_video(self, frames: Tensor) -> VideoFeatures:
        """Encode ``uint8 [B, T, H, W, 3]`` RGB frames."""
        raise NotImplementedError

    def encode_text(self, text_ids: Tensor) -> TextFeatures:
        """Encode ``long [B, L]`` token ids (``0`` pads)."""
        raise NotImplementedError

    def fuse(self, video: VideoFeatures, text: TextFeatures) -> Tensor:
        """Joint ``[B, d]`` representation of each (video, text) pair."""
        raise NotImplementedError

    def embed_words(self, ids: Tensor) -> Tensor:
        """Word embeddings ``[..., d]`` of ids, so scene-graph labels live in the host's text space."""
        raise NotImplementedError

    def embed_labels(self, ids: Tensor) -> Tensor:
        """One embedding ``[N, d]`` per label ``ids [N, L]`` (word ids, ``0`` pads) in the space where the host
        compares texts: here the mean of the word embeddings; hosts with a text encoder in a joint space
        (CLIP4Clip) encode the label as a text.  Used to link caption nouns to detector labels."""
        words = self.embed_words(ids)
        mask = (ids != 0).unsqueeze(-1).to(words.dtype)
        return (words * mask).sum(1) / mask.sum(1).clamp(min=1)

    #: whether :meth:`token_grid` gives the fusion's video tokens as a spatial grid (token-level distillation).
    has_token_grid: bool = False

    def token_grid(self, video: VideoFeatures) -> Tensor:
        """The video tokens the fusion attends to as a grid ``[B, T, d, h, w]`` (only if :attr:`has_token_grid`)."""
        raise NotImplementedError(f"{type(self).__name__} has no token grid")

    def pretrained_parameter_names(self) -> set[str]:
        """Names of parameters loaded from a pretrained checkpoint (they may train at ``optim.pretrained_lr``)."""
        return set()

    def feature_parameters(self, kind: str) -> list[nn.Parameter]:
        """Parameters that only produce the ``kind`` feature (pooled ``text`` or ``video``, or the ``joint``
        fusion).  A task whose losses read no such feature freezes them: DDP requires every trainable
        parameter to get a gradient."""
        return []

    def text_only_parameters(self, word_embeddings: bool) -> list[nn.Parameter]:
        """Parameters that only encode or fuse text (and, with ``word_embeddings``, the word table that Finsta
        also uses for node labels).  A task whose samples have no text (action recognition) freezes them."""
        return []

    def contrastive_scale(self) -> nn.Parameter | None:
        """The host's own learnable log temperature for video-text contrast (CLIP's ``logit_scale``), if it has
        one.  Hosts keep it frozen; a task whose loss uses it (post-training) turns its gradient on, so no
        configuration leaves a trainable parameter without a gradient (DDP)."""
        return None

    def load_exported(self, saved: dict[str, Any], data_info: dict[str, Any]) -> str:
        """Copy the weights of an exported host (``hosts/io.py``) trained with the same tokenizer."""
        if saved.get("tokenizer_size") != data_info.get("tokenizer_size"):
            raise RuntimeError(f"tokenizer of {saved.get('tokenizer_size')} tokens, this data has "
                               f"{data_info.get('tokenizer_size')}")
        self.load_state_dict(saved["state_dict"])
        return f"{len(saved['state_dict'])} tensors"
