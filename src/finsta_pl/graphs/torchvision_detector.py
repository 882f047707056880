"""``detector: torchvision``: torchvision's COCO detectors (Faster R-CNN, RetinaNet, FCOS, SSDlite) for DSGs,
as the paper used a trained Faster R-CNN.

``weights: DEFAULT`` takes the model's pretrained COCO weights (torchvision downloads them on first use into
``$TORCH_HOME``); ``weights: null`` gives random weights (tests, plumbing); a file path loads a state dict
(``weights_only``).  Class names come from the weights' metadata, so labels are COCO's words ("person",
"dog", "dining table") that label linking maps onto caption nouns (``graphs/lexicon.py``).

In DataLoader workers the model is built lazily, once per process, on ``device`` (CPU by default), and all
keyframes of a clip go through it in one batched call (``batch_frames`` at a time).  For a whole dataset,
``finsta-pl detect`` runs the same detector batched on the accelerator and writes sidecars that
``detector: precomputed`` reads (detect once, train many times).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from finsta_pl.errors import FinstaError
from finsta_pl.graphs.detection import Detection, color_name

#: model name -> (torchvision builder, its weights enum).
MODELS: dict[str, tuple[str, str]] = {
    "fasterrcnn_resnet50_fpn": ("fasterrcnn_resnet50_fpn", "FasterRCNN_ResNet50_FPN_Weights"),
    "fasterrcnn_resnet50_fpn_v2": ("fasterrcnn_resnet50_fpn_v2", "FasterRCNN_ResNet50_FPN_V2_Weights"),
    "fasterrcnn_mobilenet_v3_large_fpn": ("fasterrcnn_mobilenet_v3_large_fpn", "FasterRCNN_MobileNet_V3_Large_FPN_Weights"),
    "retinanet_resnet50_fpn": ("retinanet_resnet50_fpn", "RetinaNet_ResNet50_FPN_Weights"),
    "retinanet_resnet50_fpn_v2": ("retinanet_resnet50_fpn_v2", "RetinaNet_ResNet50_FPN_V2_Weights"),
    "fcos_resnet50_fpn": ("fcos_resnet50_fpn", "FCOS_ResNet50_FPN_Weights"),
    "ssdlite320_mobilenet_v3_large": ("ssdlite320_mobilenet_v3_large", "SSDLite320_MobileNet_V3_Large_Weights"),
}
#: COCO's unused category slots in torchvision's metadata: never a label.
_UNUSED = {"__background__", "N/A"}


@dataclass
class TorchvisionDetector:
    """A torchvision COCO detector behind the :class:`~finsta_pl.graphs.detection.Detector` protocol.

    ``score_threshold``/``top_k``: kept detections per frame; ``min_size``/``max_size``: the model's input
    resize (torchvision's defaults, 800/1333, when ``None``; small clips need far less); ``device``: where
    the model runs (``cpu`` in workers; ``cuda`` for ``finsta-pl detect``)."""

    model: str = "fasterrcnn_resnet50_fpn_v2"
    weights: str | None = "DEFAULT"
    score_threshold: float = 0.5
    top_k: int = 10
    min_size: int | None = None
    max_size: int | None = None
    device: str = "cpu"
    batch_frames: int = 8
    seed: int = 0  # random weights (weights: null) are drawn from it: every worker builds the same network
    _net: Any = field(default=None, init=False, repr=False, compare=False)
    _classes: tuple[str, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # jsonargparse hands a null inside a dict-typed config value over as the string "None".
        if isinstance(self.weights, str) and self.weights.strip().lower() in {"none", "null", ""}:
            self.weights = None
        if self.model not in MODELS:
            raise ValueError(f"unknown torchvision detector {self.model!r}; choose one of {sorted(MODELS)}")
        if not 0 <= self.score_threshold <= 1 or self.top_k < 1 or self.batch_frames < 1:
            raise ValueError(f"TorchvisionDetector: need 0 <= score_threshold <= 1, top_k >= 1, batch_frames >= 1")

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without the network: each worker process builds its own on first use."""
        state = dict(self.__dict__)
        state["_net"] = None
        return state

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names by label index (from the weights' metadata, also for random weights)."""
        if not self._classes:
            self._build()
        return self._classes

    def _build(self) -> Any:
        import torch

        from finsta_pl.compat.torchvision import load_torchvision

        load_torchvision()
        from torchvision.models import detection

        builder, enum_name = MODELS[self.model]
        enum = getattr(detection, enum_name)
        self._classes = tuple(enum.DEFAULT.meta["categories"])
        kwargs: dict[str, Any] = {}
        if not self.model.startswith("ssdlite"):  # SSDlite has a fixed 320x320 input
            kwargs.update({k: v for k, v in (("min_size", self.min_size), ("max_size", self.max_size)) if v})
        pretrained = self.weights is not None and self.weights.upper() in {"DEFAULT", *enum.__members__}
        if pretrained:
            weights = enum.DEFAULT if self.weights.upper() == "DEFAULT" else enum[self.weights.upper()]
            net = getattr(detection, builder)(weights=weights, **kwargs)
        else:
            with torch.random.fork_rng():
                torch.manual_seed(self.seed)
                net = getattr(detection, builder)(weights=None, weights_backbone=None,
                                                  num_classes=len(self._classes), **kwargs)
            if self.weights is not None:
                path = Path(self.weights).expanduser()
                if not path.is_file():
                    raise FinstaError(f"detector weights not found: {path} (use DEFAULT, a weights name of "
                                      f"{enum_name}, a state-dict file, or null for random weights)")
                net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        self._net = net.eval().to(self.device)
        return self._net

    def frame_local(self, frames: np.ndarray) -> np.ndarray:
        """Every frame: the network sees each frame alone (a batch of equal-size frames pads none).  Up to the
        last bits of the convolutions, which may differ with the batch's size, so a score at the threshold may
        fall either side of it on a second pass; a cached frame keeps the first pass's detections."""
        return np.ones(len(frames), dtype=bool)

    def __call__(self, frames: np.ndarray) -> list[list[Detection]]:
        """Detections for each frame of ``frames`` (``[T, H, W, 3]`` RGB uint8), ``batch_frames`` per call."""
        import torch

        net = self._net if self._net is not None else self._build()
        images = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
        out: list[list[Detection]] = []
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_frames):
                chunk = images[start : start + self.batch_frames].to(self.device, torch.float32) / 255
                for k, result in enumerate(net(list(chunk))):
                    out.append(self.to_detections(result, frames[start + k]))
        return out

    def to_detections(self, result: dict[str, Any], frame: np.ndarray) -> list[Detection]:
        """One frame's model output (``boxes``, ``labels``, ``scores``) as :class:`Detection`s above the score
        threshold, best ``top_k``, each with its box's mean colour as cue and attribute."""
        scores = result["scores"].float().cpu().numpy()
        boxes = result["boxes"].float().cpu().numpy()
        labels = result["labels"].cpu().numpy()
        h, w = frame.shape[:2]
        dets = []
        for i in np.argsort(-scores, kind="stable"):
            if scores[i] < self.score_threshold or len(dets) == self.top_k:
                break
            name = self._classes[labels[i]] if 0 <= labels[i] < len(self._classes) else ""
            if name in _UNUSED or not name:
                continue
            x1, y1, x2, y2 = (float(v) for v in boxes[i])
            x1, y1, x2, y2 = max(x1, 0.0), max(y1, 0.0), min(x2, float(w)), min(y2, float(h))
            if x2 - x1 < 1 or y2 - y1 < 1:
                continue
            region = frame[int(y1) : int(np.ceil(y2)), int(x1) : int(np.ceil(x2))].reshape(-1, 3)
            mean = region.mean(0) if len(region) else np.zeros(3)
            color = color_name(mean)
            dets.append(Detection((x1, y1, x2, y2), name, float(scores[i]), color, tuple(mean.tolist()), [color]))
        return dets
