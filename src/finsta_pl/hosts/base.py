"""The host protocol (DESIGN.md §6): what Finsta needs from a video-language model to plug into it."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn


@dataclass
class VideoFeatures:
    """``pooled [B, d]``; ``frames [B, T, d]`` frame tokens; ``maps [B, T, d, h, w]`` frame feature maps
    (for RoI pooling of DSG nodes); ``tokens [B, S, d]`` the tokens cross-modal fusion attends to."""

    pooled: Tensor
    frames: Tensor
    maps: Tensor
    tokens: Tensor


@dataclass
class TextFeatures:
    """``pooled [B, d]``; ``tokens [B, L, d]``; ``mask [B, L]`` true on real tokens."""

    pooled: Tensor
    tokens: Tensor
    mask: Tensor


class Host(nn.Module):
    """A video-language model Finsta can enhance: two encoders, an optional fusion, and its width ``dim``."""

    dim: int

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
