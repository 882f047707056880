"""CLIP4Clip-style host over a `transformers` CLIP (Luo et al. 2021): frames through CLIP's image tower, the
text through its text tower, both projected into the joint space.

- Video: each frame's ``[CLS]`` embedding is a frame token; the clip is their mean (CLIP4Clip "meanP").  The
  patch tokens, normalised and projected like ``[CLS]`` (as MaskCLIP does), are the frame feature maps that
  DSG nodes RoI-pool, so graph nodes live in the same space as the host's features.
- Text: the projected token states; pooled at the end-of-text token (CLIP's own pooling).
- Fusion: CLIP has none; a small Transformer over [text tokens; frame tokens] with type and frame-position
  embeddings (CLIP4Clip "tightTransf"), read at the first position, gives the joint feature tasks need.

Ids arrive shifted by one (``hf_tokenizer.ID_SHIFT``, ``0`` pads) and are shifted back here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from finsta_pl.errors import FinstaError
from finsta_pl.hf_tokenizer import ID_SHIFT, require_transformers
from finsta_pl.hosts.base import Host, TextFeatures, VideoFeatures

@dataclass
class CLIP4ClipConfig:
    """The CLIP4Clip host's settings (``host:`` fields of a task config with ``name: clip4clip``).  Its width is
    the CLIP checkpoint's ``projection_dim``, not a setting."""

    checkpoint: str | None = None  # a transformers CLIP folder (config.json, weights, tokenizer, preprocessor)
    clip_config: dict[str, Any] | None = None  # without a checkpoint: CLIPConfig arguments of a random CLIP
    heads: int = 4  # attention heads of the temporal fusion Transformer over frame and word features
    fusion_layers: int = 1  # its layers
    max_frames: int = 64  # learned frame positions: the most frames a clip may have
    dropout: float = 0.1  # in the fusion


# CLIP's pixel statistics (its image processor's defaults); a checkpoint's preprocessor config overrides them.
_MEAN, _STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)


def load_clip(config: CLIP4ClipConfig) -> Any:
    """A ``CLIPModel`` from ``config.checkpoint`` (a folder) or, randomly initialised, from ``config.clip_config``."""
    transformers = require_transformers()
    if config.checkpoint:
        path = Path(config.checkpoint).expanduser()
        if not (path / "config.json").is_file():
            raise FinstaError(f"{path}: no transformers CLIP checkpoint there (config.json + weights). Download "
                              f"one, e.g. `hf download openai/clip-vit-base-patch32 --local-dir {path}`, or write "
                              f"a tiny random one with `finsta-pl tiny-clip {path}`")
        return transformers.CLIPModel.from_pretrained(str(path))
    if config.clip_config is not None:  # {} is CLIP's default: the ViT-B/32 architecture
        return transformers.CLIPModel(transformers.CLIPConfig(**config.clip_config))
    raise FinstaError("host clip4clip needs host.checkpoint (a CLIP folder) or host.clip_config")


def _pixel_stats(config: CLIP4ClipConfig) -> tuple[tuple[float, ...], tuple[float, ...]]:
    file = Path(config.checkpoint).expanduser() / "preprocessor_config.json" if config.checkpoint else None
    if file is None or not file.is_file():
        return _MEAN, _STD
    pre = json.loads(file.read_text())
    return tuple(pre.get("image_mean", _MEAN)), tuple(pre.get("image_std", _STD))


class CLIP4Clip(Host):
    """See module docstring.  ``tokenizer_size`` (from the DataModule) must match CLIP's text vocabulary."""

    name = "clip4clip"
    shape_keys = ("heads", "fusion_layers", "max_frames")

    def __init__(self, config: CLIP4ClipConfig, tokenizer_size: int) -> None:
        super().__init__()
        self.config = config
        # from_pretrained returns an eval-mode model; start in train mode like every other module, so that
        # Lightning's train()/eval() switching decides (it keeps modes it finds at fit start).
        self.clip = load_clip(config).train()
        self.clip.logit_scale.requires_grad_(False)  # see contrastive_scale()
        text_cfg, vision_cfg = self.clip.config.text_config, self.clip.config.vision_config
        if tokenizer_size > text_cfg.vocab_size:
            raise FinstaError(f"the data's tokenizer has {tokenizer_size} tokens but this CLIP's text tower knows "
                              f"{text_cfg.vocab_size}: point data.init_args.tokenizer at the checkpoint's folder")
        d = self.dim = self.clip.config.projection_dim
        self.image_size = vision_cfg.image_size
        self.grid = vision_cfg.image_size // vision_cfg.patch_size
        self.frame_pos = nn.Parameter(torch.zeros(config.max_frames, d))
        self.type_embed = nn.Parameter(torch.zeros(2, d))
        layer = nn.TransformerEncoderLayer(d, config.heads, 2 * d, config.dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.fusion = nn.TransformerEncoder(layer, config.fusion_layers, enable_nested_tensor=False)
        self.fusion_norm = nn.LayerNorm(d)
        nn.init.normal_(self.frame_pos, std=0.02)
        nn.init.normal_(self.type_embed, std=0.02)
        mean, std = _pixel_stats(config)
        self.register_buffer("pixel_mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def pretrained_parameter_names(self) -> set[str]:
        """CLIP's own parameters (only when they came from a checkpoint, not from a random ``clip_config``)."""
        return {f"clip.{n}" for n, _ in self.clip.named_parameters()} if self.config.checkpoint else set()

    def contrastive_scale(self) -> nn.Parameter:
        """CLIP's pretrained contrastive temperature (log scale)."""
        return self.clip.logit_scale

    def encode_video(self, frames: Tensor) -> VideoFeatures:
        """See :meth:`Host.encode_video`; frames are resized to CLIP's input size."""
        b, t, h, w, _ = frames.shape
        x = frames.reshape(b * t, h, w, 3).permute(0, 3, 1, 2).float().div(255)
        if (h, w) != (self.image_size, self.image_size):
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False,
                              antialias=True)
        x = ((x - self.pixel_mean) / self.pixel_std).to(self.frame_pos.dtype)
        vision = self.clip.vision_model(pixel_values=x)
        tokens = self.clip.visual_projection(self.clip.vision_model.post_layernorm(vision.last_hidden_state))
        frame_tokens = tokens[:, 0].reshape(b, t, self.dim)
        maps = tokens[:, 1:].reshape(b, t, self.grid, self.grid, self.dim).permute(0, 1, 4, 2, 3)
        return VideoFeatures(frame_tokens.mean(1), frame_tokens, maps, frame_tokens + self.frame_pos[:t])

    def encode_text(self, text_ids: Tensor) -> TextFeatures:
        """See :meth:`Host.encode_text`."""
        mask = text_ids != 0
        out = self.clip.text_model(input_ids=(text_ids - ID_SHIFT).clamp(min=0), attention_mask=mask.long())
        tokens = self.clip.text_projection(out.last_hidden_state)
        return TextFeatures(self.clip.text_projection(out.pooler_output), tokens, mask)

    def fuse(self, video: VideoFeatures, text: TextFeatures) -> Tensor:
        """See :meth:`Host.fuse`."""
        x = torch.cat([text.tokens + self.type_embed[0], video.tokens + self.type_embed[1]], 1)
        pad = torch.cat([~text.mask, text.mask.new_zeros(video.tokens.shape[:2])], 1)
        return self.fusion_norm(self.fusion(x, src_key_padding_mask=pad)[:, 0])

    def feature_parameters(self, kind: str) -> list[nn.Parameter]:
        """The fusion and what only it reads (see :meth:`Host.feature_parameters`); CLIP's pooled features
        share every weight with the tokens."""
        if kind != "joint":
            return []
        return [*self.fusion.parameters(), *self.fusion_norm.parameters(), self.type_embed, self.frame_pos]

    def text_only_parameters(self, word_embeddings: bool) -> list[nn.Parameter]:
        """CLIP's text tower and the fusion (see :meth:`Host.text_only_parameters`); the token table and the
        text projection also embed Finsta's node labels, so they stay unless ``word_embeddings``."""
        table = self.clip.text_model.embeddings.token_embedding
        keep = set() if word_embeddings else {id(p) for p in [*table.parameters(), *self.clip.text_projection.parameters()]}
        text = [p for p in [*self.clip.text_model.parameters(), *self.clip.text_projection.parameters()] if id(p) not in keep]
        return text + [*self.fusion.parameters(), *self.fusion_norm.parameters(), self.type_embed, self.frame_pos]

    def embed_labels(self, ids: Tensor) -> Tensor:
        """Each label encoded as a text by CLIP's text tower, ``[BOS] label [EOS]``, projected into the joint
        space (the paper's cross-modal coreference by CLIP similarity); each distinct label once."""
        unique, inverse = torch.unique(ids, dim=0, return_inverse=True)
        words = (unique - ID_SHIFT).clamp(min=0)
        lengths = (unique != 0).sum(1)
        cfg = self.clip.config.text_config
        rows = torch.arange(len(unique), device=ids.device)
        tokens = torch.zeros(len(unique), unique.shape[1] + 2, dtype=torch.long, device=ids.device)
        tokens[:, 0] = cfg.bos_token_id
        tokens[:, 1:-1] = words
        tokens[rows, lengths + 1] = cfg.eos_token_id
        mask = torch.arange(tokens.shape[1], device=ids.device)[None] <= (lengths + 1)[:, None]
        tokens = tokens * mask
        out = self.clip.text_model(input_ids=tokens, attention_mask=mask.long())
        return self.clip.text_projection(out.pooler_output)[inverse]

    def embed_words(self, ids: Tensor) -> Tensor:
        """CLIP's token embeddings of (shifted) ids, projected into the joint space."""
        table = self.clip.text_model.embeddings.token_embedding
        return self.clip.text_projection(table((ids - ID_SHIFT).clamp(min=0)))
