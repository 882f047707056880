"""The built-in host: a small video-language model that trains on a CPU.

Video: a per-frame convolutional stem (its output maps feed RoI pooling of DSG nodes), 4x4 patch tokens per
frame with spatial and temporal position embeddings, and a Transformer over all patches of the clip, so motion
(where a patch was, where it is now) is visible to attention.  Text: word embeddings and a Transformer, the
``[CLS]`` token pooled.  Fusion: text tokens cross-attend to the video patches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from finsta_pl.hosts.base import Host, TextFeatures, VideoFeatures

_WORDS = "words.weight"


def _encoder(dim: int, heads: int, layers: int, dropout: float) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout, activation="gelu", batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


@dataclass
class SmallVLMConfig:
    """The built-in host's sizes (``host:`` fields of a task config with ``name: small_vlm``)."""

    dim: int = 128  # width of every token, pooled feature and head; the GroupNorm stem needs a multiple of 8
    heads: int = 4  # attention heads of the video encoder, the text encoder and the fusion
    video_layers: int = 2  # Transformer layers over the patch tokens of all frames of a clip
    text_layers: int = 2  # Transformer layers over a text's word tokens
    fusion_layers: int = 1  # decoder layers in which the text attends to the video tokens (the joint feature)
    patch_grid: int = 4  # each frame's feature map is pooled to patch_grid x patch_grid tokens (and RoI maps)
    max_frames: int = 64  # learned frame positions: the most frames a clip may have
    max_text_len: int = 128  # learned word positions: the longest text
    dropout: float = 0.1  # in the encoders and the fusion


class SmallVLM(Host):
    """See module docstring; ``vocab_size`` comes from the DataModule."""

    name = "small_vlm"
    shape_keys = ("dim", "heads", "video_layers", "text_layers", "fusion_layers", "patch_grid")

    def __init__(self, config: SmallVLMConfig, vocab_size: int) -> None:
        super().__init__()
        d = self.dim = config.dim
        self.config = config

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, 2, 1), nn.GroupNorm(8, cout), nn.GELU())

        self.stem = nn.Sequential(block(3, 32), block(32, 64), block(64, d))
        self.pool = nn.AdaptiveAvgPool2d(config.patch_grid)
        self.patch_pos = nn.Parameter(torch.zeros(config.patch_grid**2, d))
        self.frame_pos = nn.Parameter(torch.zeros(config.max_frames, d))
        self.video_encoder = _encoder(d, config.heads, config.video_layers, config.dropout)
        self.video_norm = nn.LayerNorm(d)
        self.words = nn.Embedding(vocab_size, d, padding_idx=0)
        self.text_pos = nn.Parameter(torch.zeros(config.max_text_len, d))
        self.text_encoder = _encoder(d, config.heads, config.text_layers, config.dropout)
        self.text_norm = nn.LayerNorm(d)
        fusion = nn.TransformerDecoderLayer(d, config.heads, 2 * d, config.dropout, activation="gelu", batch_first=True, norm_first=True)
        self.fusion = nn.TransformerDecoder(fusion, config.fusion_layers)
        self.fusion_norm = nn.LayerNorm(d)
        for p in (self.patch_pos, self.frame_pos, self.text_pos):
            nn.init.normal_(p, std=0.02)
        self.register_buffer("pixel_mean", torch.tensor([0.45, 0.45, 0.45]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor([0.225, 0.225, 0.225]).view(1, 3, 1, 1), persistent=False)

    def encode_video(self, frames: Tensor) -> VideoFeatures:
        """See :meth:`Host.encode_video`."""
        b, t, h, w, _ = frames.shape
        x = frames.reshape(b * t, h, w, 3).permute(0, 3, 1, 2).float().div(255)
        maps = self.stem((x - self.pixel_mean) / self.pixel_std)  # [BT, d, h', w']
        patches = self.pool(maps).flatten(2).transpose(1, 2).reshape(b, t, -1, self.dim)
        patches = patches + self.patch_pos + self.frame_pos[:t, None]
        tokens = self.video_encoder(patches.reshape(b, -1, self.dim))
        frame_tokens = tokens.reshape(b, t, -1, self.dim).mean(2)
        pooled = self.video_norm(frame_tokens.mean(1))
        return VideoFeatures(pooled, frame_tokens, maps.reshape(b, t, self.dim, *maps.shape[-2:]), tokens)

    has_token_grid = True

    def token_grid(self, video: VideoFeatures) -> Tensor:
        """The patch tokens (what the fusion attends to) as ``[B, T, d, g, g]``."""
        b, t = video.frames.shape[:2]
        g = self.config.patch_grid
        return video.tokens.reshape(b, t, g, g, self.dim).permute(0, 1, 4, 2, 3)

    def encode_text(self, text_ids: Tensor) -> TextFeatures:
        """See :meth:`Host.encode_text`."""
        mask = text_ids != 0
        x = self.words(text_ids) + self.text_pos[: text_ids.shape[1]]
        tokens = self.text_encoder(x, src_key_padding_mask=~mask)
        return TextFeatures(self.text_norm(tokens[:, 0]), tokens, mask)

    def fuse(self, video: VideoFeatures, text: TextFeatures) -> Tensor:
        """See :meth:`Host.fuse`."""
        out = self.fusion(text.tokens, video.tokens, tgt_key_padding_mask=~text.mask)
        return self.fusion_norm(out[:, 0])

    def pretrained_parameter_names(self) -> set[str]:
        """Every parameter once an exported (post-trained) host was loaded, else none."""
        return set(getattr(self, "_pretrained", ()))

    def feature_parameters(self, kind: str) -> list[nn.Parameter]:
        """The final norm of a pooled feature, or the fusion (see :meth:`Host.feature_parameters`)."""
        modules = {"video": [self.video_norm], "text": [self.text_norm], "joint": [self.fusion, self.fusion_norm]}
        return [p for m in modules[kind] for p in m.parameters()]

    def text_only_parameters(self, word_embeddings: bool) -> list[nn.Parameter]:
        """Text encoder and fusion (see :meth:`Host.text_only_parameters`)."""
        modules = [self.text_encoder, self.text_norm, self.fusion, self.fusion_norm] + ([self.words] if word_embeddings else [])
        return [self.text_pos, *(p for m in modules for p in m.parameters())]

    def embed_words(self, ids: Tensor) -> Tensor:
        """See :meth:`Host.embed_words`."""
        return self.words(ids)

    def load_exported(self, saved: dict[str, Any], data_info: dict[str, Any]) -> str:
        """Copy an exported host's weights; word embeddings are matched by word, new words keep their init."""
        if "vocab" not in saved or "vocab" not in data_info:
            raise RuntimeError("the built-in host needs word vocabularies on both sides (data tokenizer: words)")
        state = dict(saved["state_dict"])
        old_words = state.pop(_WORDS)
        position = {w: i for i, w in enumerate(saved["vocab"])}
        vocab = data_info["vocab"]
        pairs = [(i, position[w]) for i, w in enumerate(vocab) if w in position]
        with torch.no_grad():
            if pairs:
                new, old = (torch.tensor(x, dtype=torch.long) for x in zip(*pairs))
                self.words.weight[new] = old_words[old].to(self.words.weight.dtype)
        missing, unexpected = self.load_state_dict(state, strict=False)
        if set(missing) - {_WORDS} or unexpected:
            raise RuntimeError(f"missing {missing}, unexpected {unexpected}")
        # Everything was copied (the word table by word): all of it may train at ``optim.pretrained_lr``.
        self._pretrained = {n for n, _ in self.named_parameters()}
        return f"{len(pairs)} word embeddings reused, {len(vocab) - len(pairs)} new"
