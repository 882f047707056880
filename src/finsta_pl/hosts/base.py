"""The host protocol (docs/DESIGN-NOTES.md §6): what Finsta needs from a video-language model to plug into it."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, TypeVar

from torch import Tensor, nn


@dataclass
class HostConfig:
    """The ``host:`` section of a task config: which host (``name``), an enhanced host to start from
    (``init_from``, exported by post-training, ``hosts/io.py``), and the sizes of the chosen host.

    One flat section for every host, so the shipped YAML, command-line overrides and checkpoints keep one
    shape; each host reads only its own fields into its own typed config, where each field is explained:
    :class:`~finsta_pl.hosts.small_vlm.SmallVLMConfig` (``small_vlm``, built in) and
    :class:`~finsta_pl.hosts.clip4clip.CLIP4ClipConfig` (``clip4clip``).  A field the chosen host does not
    read is ignored."""

    name: str = "small_vlm"  # small_vlm | clip4clip (hosts/registry.py)
    dim: int = 128  # small_vlm
    heads: int = 4  # both
    video_layers: int = 2  # small_vlm
    text_layers: int = 2  # small_vlm
    fusion_layers: int = 1  # both
    patch_grid: int = 4  # small_vlm
    max_frames: int = 64  # both
    max_text_len: int = 128  # small_vlm
    dropout: float = 0.1  # both
    init_from: str | None = None  # any host: an enhanced host file to load the weights from
    checkpoint: str | None = None  # clip4clip
    clip_config: dict[str, Any] | None = None  # clip4clip


ConfigT = TypeVar("ConfigT")


def host_settings(cls: type[ConfigT], config: HostConfig) -> ConfigT:
    """The typed config ``cls`` of one host (a dataclass whose fields are a subset of :class:`HostConfig`'s),
    filled from the ``host:`` section ``config``."""
    return cls(**{f.name: getattr(config, f.name) for f in fields(cls)})  # type: ignore[arg-type]


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
    #: the host's own typed config (what it was built from; exported with its weights).
    config: Any
    #: the host's name in ``HostConfig.name`` (and in an exported host's file).
    name: str = ""
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
