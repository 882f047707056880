"""The LightningModule every task builds on: host + optional Finsta streams, optimisation, logging.

A task subclass adds its head and says how a batch becomes a loss and metrics (:meth:`task_step`); this
class runs the host, the graph streams (when the batch carries graphs and Finsta is enabled), adds the
auxiliary losses in training, and logs with explicit batch sizes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor, nn

from finsta_pl.batch import FinstaBatch
from finsta_pl.data_info import DataInfo
from finsta_pl.hosts.base import HostConfig, TextFeatures, VideoFeatures
from finsta_pl.hosts.io import load_host_weights
from finsta_pl.hosts.registry import build_host
from finsta_pl.nn.finsta import FinstaConfig, FinstaOutput, FinstaStreams
from finsta_pl.safety import allow_in_checkpoints


@dataclass
class OptimConfig:
    """AdamW with linear warm-up and cosine decay over the run's optimizer steps.  ``pretrained_lr``: the
    learning rate of weights a host loaded from a pretrained checkpoint (``None``: ``lr`` for all)."""

    lr: float = 1e-3
    pretrained_lr: float | None = None
    weight_decay: float = 0.01
    warmup_fraction: float = 0.05
    min_lr_ratio: float = 0.05


# Every task checkpoint's hyperparameters hold these; allow-listed so checkpoints load with weights_only=True.
allow_in_checkpoints(HostConfig, FinstaConfig, OptimConfig)


@dataclass
class Features:
    """Host features after the dual-stream fusion, and Finsta's output (``None`` when it did not run).
    ``video`` has a row per clip; ``text`` and ``joint`` a row per text (``None`` for text-less tasks)."""

    video: VideoFeatures
    text: TextFeatures | None
    joint: Tensor | None
    finsta: FinstaOutput | None
    #: on steps that measure gradients at the host (:attr:`FinstaTask.measure_host_grads`): the host's output
    #: features as the heads and streams read them (views; see :func:`_host_probes`), else empty.
    host_probes: tuple[Tensor, ...] = ()


class FinstaTask(L.LightningModule):
    """Base task module.  ``data_info`` is linked from the DataModule by the CLI (vocabulary, labels, ...).

    A task subclass takes its own arguments and hands the shared ones on unchanged (``**kwargs`` to this
    ``__init__``): the CLI reads their types from here, ``save_hyperparameters`` records them all.
    """

    #: host features the task's head reads; only these get Finsta's dual-stream-sum (and its parameters).
    fused_features: tuple[str, ...] = ("text", "video", "joint")
    #: host features any loss of the task reads (defaults to the fused ones).
    host_features: tuple[str, ...] | None = None
    #: targets the task reads per clip and per text; checked against the DataModule's DataInfo at construction.
    reads_targets: tuple[str, ...] = ()
    reads_text_targets: tuple[str, ...] = ()
    #: whether samples carry texts; without, the text tower, the fusion and Finsta's text streams go unused.
    uses_text: bool = True
    #: name of a ``ModuleDict`` of per-stage metrics whose dict of values is computed at each epoch end
    #: (full-matrix ranking, corpus scores); per-batch metrics log themselves instead.
    epoch_metrics: str | None = None
    #: whether the head attends to the DSG's node states (``FinstaOutput.video_nodes``), not only its readout.
    reads_video_nodes: bool = False
    #: set for a training step (by ``callbacks.AlignmentMonitor``): measure the gradient norms of the weighted
    #: alignment losses and of the task loss at the host's output features, logged as
    #: ``train/align_host_grad_norm`` and ``train/task_host_grad_norm`` (two partial backward passes that retain
    #: the graph; the step's own backward and update are unchanged).  The last values: :attr:`host_grad_norms`.
    measure_host_grads: bool = False

    def __init__(
        self,
        data_info: dict[str, Any] | None = None,
        host: HostConfig | None = None,
        finsta: FinstaConfig | None = None,
        optim: OptimConfig | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.info = DataInfo.from_dict(data_info, type(self).__name__)
        self.info.require(type(self).__name__, self.reads_targets, self.reads_text_targets)
        self.data_info = data_info
        self.host_config = host or HostConfig()
        self.finsta_config = finsta or FinstaConfig()
        self.optim = optim or OptimConfig()
        self.host = build_host(self.host_config, data_info)
        if self.host_config.init_from:
            copied = load_host_weights(self.host, data_info, self.host_config.init_from)
            rank_zero_info(f"host initialised from {self.host_config.init_from} ({copied})")
        enabled = self.finsta_config.enabled
        self.finsta = (FinstaStreams(self.finsta_config, self.host, self.fused_features, self.uses_text,
                                     self.reads_video_nodes)
                       if enabled else None)
        self.host_grad_norms: dict[str, Tensor] = {}
        self._freeze_unread_features()
        if not self.uses_text:
            for p in self.host.text_only_parameters(word_embeddings=self.finsta is None):
                p.requires_grad_(False)

    @property
    def host_grads_measurable(self) -> bool:
        """Whether :attr:`measure_host_grads` can be honoured: Finsta is on and its streams are not compiled (the
        measurement backs through the streams three times over one forward; a compiled backward reuses its
        saved buffers in place, so it runs once: measured, the second pass fails)."""
        return self.finsta is not None and not self.finsta_config.compile

    def classifier(self, num_outputs: int, dropout: float = 0.1) -> nn.Sequential:
        """The task heads' shape: ``Linear(d, 2d) -> GELU -> Dropout -> Linear(2d, num_outputs)`` on host width
        (``dropout=0``: no Dropout layer at all, so the last layer's index is 2, not 3)."""
        d = self.host.dim
        drop = [nn.Dropout(dropout)] if dropout > 0 else []
        return nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), *drop, nn.Linear(2 * d, num_outputs))

    def _freeze_unread_features(self) -> None:
        """Freeze host parameters that only feed features no loss reads (QA reads the joint feature alone,
        retrieval no joint feature), so DDP with ``find_unused_parameters=False`` stays safe."""
        read = set(self.host_features if self.host_features is not None else self.fused_features)
        if self.finsta is not None:
            if self.uses_text:
                read.add("joint")  # it queries the HSG readout
            if self.finsta_config.distill:
                read |= {"text", "video", "joint"} if self.uses_text else {"video"}  # the distillation students
        for kind in {"text", "video", "joint"} - read:
            for p in self.host.feature_parameters(kind):
                p.requires_grad_(False)

    def true_texts(self, batch: FinstaBatch) -> Tensor | None:
        """[M] bool: the texts that describe their clip (``None``: all of them, as questions and captions do).
        Only true texts make alignment positives: a wrong candidate's objects and actions are not in the video."""
        return None

    def features(self, batch: FinstaBatch) -> Features:
        """Host encoders (each clip once, each text once), fusion of every text with its clip, and (when enabled
        and graphs are present) the Finsta streams with the dual-stream-sum."""
        video = self.host.encode_video(batch.frames)
        text = self.host.encode_text(batch.text_ids) if batch.num_texts else None
        joint = self.host.fuse(video.select(batch.text_sample), text) if text is not None else None
        probes: tuple[Tensor, ...] = ()
        if self.measure_host_grads and self.host_grads_measurable and self.training and torch.is_grad_enabled():
            video, text, joint, probes = _host_probes(video, text, joint)
        if self.finsta is None or not batch.has_graphs:
            return Features(video, text, joint, None, probes)
        out = self.finsta(batch, self.host, video, text, joint, self.true_texts(batch))
        fuse = self.finsta.fuse
        video = VideoFeatures(fuse("video", video.pooled, out.video), video.frames, video.maps, video.tokens)
        if text is not None and out.text is not None and joint is not None:
            text = TextFeatures(fuse("text", text.pooled, out.text), text.tokens, text.mask)
            joint = fuse("joint", joint, out.joint)
        return Features(video, text, joint, out, probes)

    def task_step(self, batch: FinstaBatch, feats: Features, stage: str) -> Tensor:
        """The task's loss for ``batch`` (and metric updates for ``stage``); implemented by each task."""
        raise NotImplementedError

    def _step(self, batch: FinstaBatch, stage: str) -> Tensor:
        feats = self.features(batch)
        loss = self.task_step(batch, feats, stage)
        bs = batch.batch_size
        self.log(f"{stage}/task_loss", loss, batch_size=bs, sync_dist=stage != "train")
        auxiliary = self.finsta.total_loss(feats.finsta.losses) if feats.finsta is not None else None
        if feats.host_probes:
            self._log_host_grads(loss, auxiliary, feats.host_probes, stage, bs)
        if feats.finsta is not None and auxiliary is not None:
            for name, value in feats.finsta.losses.items():
                self.log(f"{stage}/{name}", value, batch_size=bs, sync_dist=stage != "train")
            # Whether the alignment runs at all: its pairs, links and in-batch accuracy, and its share of the loss.
            stats = {**feats.finsta.stats, "loss_share": auxiliary.detach() / (loss.detach() + auxiliary.detach()).clamp(min=1e-12)}
            for name, value in stats.items():
                self.log(f"{stage}/align_{name}", value, batch_size=bs, sync_dist=stage != "train")
            loss = loss + auxiliary
        self.log(f"{stage}/loss", loss, batch_size=bs, prog_bar=stage == "train", sync_dist=stage != "train")
        if batch.num_skipped:
            self.log(f"{stage}/skipped", float(batch.num_skipped), batch_size=bs, reduce_fx="sum")
        return loss

    def _log_host_grads(self, task_loss: Tensor, auxiliary: Tensor | None, probes: tuple[Tensor, ...], stage: str,
                        bs: int) -> None:
        """Norms of the gradients of the weighted alignment losses and of the task loss at the host's output
        features (``probes``): how hard each pulls on the host.  ``autograd.grad`` with ``retain_graph`` touches
        no parameter's ``.grad``, so the step's backward and update stay what they were.  Every rank measures
        on the same steps (the monitor decides by batch index) and logs the same keys; per epoch, the mean over
        the measured steps (an epoch value reaches the logger whatever ``log_every_n_steps`` says)."""
        norms = {"task": _grad_norm(task_loss, probes)}
        if auxiliary is not None:
            norms["align"] = _grad_norm(auxiliary, probes)
        self.host_grad_norms = norms
        for name, value in norms.items():
            self.log(f"{stage}/{name}_host_grad_norm", value, batch_size=bs, on_step=False, on_epoch=True,
                     sync_dist=stage != "train")

    def training_step(self, batch: FinstaBatch, batch_idx: int) -> Tensor:
        """Task loss + Finsta's auxiliary losses."""
        return self._step(batch, "train")

    def validation_step(self, batch: FinstaBatch, batch_idx: int) -> None:
        """Loss and metrics on validation data."""
        self._step(batch, "val")

    def test_step(self, batch: FinstaBatch, batch_idx: int) -> None:
        """Loss and metrics on test data."""
        self._step(batch, "test")

    def _log_epoch_metrics(self, stage: str) -> None:
        metrics = getattr(self, self.epoch_metrics) if self.epoch_metrics else {}
        if stage not in metrics:
            return
        metric = metrics[stage]
        if metric.update_count:  # every rank holds the gathered states, so each computes the same values
            values = metric.compute()
            self.log_dict({f"{stage}/{k}": v for k, v in values.items()}, sync_dist=False)
            self.on_epoch_metrics(stage, metric)
        metric.reset()

    def on_epoch_metrics(self, stage: str, metric: Any) -> None:
        """Called after ``metric`` (of :attr:`epoch_metrics`) was computed and logged, before its reset."""

    def on_validation_epoch_end(self) -> None:
        """Compute and log the epoch-level metrics of the validation split."""
        self._log_epoch_metrics("val")

    def on_test_epoch_end(self) -> None:
        """Compute and log the epoch-level metrics of the test split."""
        self._log_epoch_metrics("test")

    def on_train_epoch_start(self) -> None:
        """Tell the DataModule the epoch before workers start, for per-epoch frame sampling."""
        dm = getattr(self.trainer, "datamodule", None)
        if dm is not None and hasattr(dm, "set_epoch"):
            dm.set_epoch(self.current_epoch)

    def configure_optimizers(self) -> Any:
        """AdamW (no decay on norms, biases and embeddings-as-positions; pretrained host weights at their own
        rate) with warm-up + cosine decay."""
        o = self.optim
        pretrained = {f"host.{n}" for n in self.host.pretrained_parameter_names()} if o.pretrained_lr else set()
        groups: dict[tuple[bool, bool], list] = {(a, b): [] for a in (False, True) for b in (False, True)}
        for name, p in self.named_parameters():
            if p.requires_grad:
                groups[(name in pretrained, p.ndim < 2 or name.endswith("_pos"))].append(p)
        opt = torch.optim.AdamW(
            [{"params": params, "lr": o.pretrained_lr if is_pre else o.lr,
              "weight_decay": 0.0 if no_decay else o.weight_decay}
             for (is_pre, no_decay), params in groups.items() if params],
            lr=o.lr,
        )
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        warmup = max(int(total * self.optim.warmup_fraction), 1)
        floor = self.optim.min_lr_ratio

        def schedule(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = min((step - warmup) / max(total - warmup, 1), 1.0)
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def _host_probes(video: VideoFeatures, text: TextFeatures | None, joint: Tensor | None
                 ) -> tuple[VideoFeatures, TextFeatures | None, Tensor | None, tuple[Tensor, ...]]:
    """The host's output features as identity views, for :meth:`FinstaTask._log_host_grads`.

    A gradient taken at a view counts only what reads the view (the task's head, the Finsta streams), not the
    host's own use of the tensor (its pooled feature is made from its tokens, its fusion reads both towers'
    tokens): the norm over all views is that of the gradient at the host's output, each path once.  Views
    change no value and no gradient.  Features no loss reads (frozen, see ``_freeze_unread_features``) are left
    out."""
    probes: list[Tensor] = []

    def probe(t: Tensor) -> Tensor:
        if not t.requires_grad:
            return t
        probes.append(t.view_as(t))
        return probes[-1]

    video = VideoFeatures(probe(video.pooled), probe(video.frames), probe(video.maps), probe(video.tokens))
    if text is not None:
        text = TextFeatures(probe(text.pooled), probe(text.tokens), text.mask)
    if joint is not None:
        joint = probe(joint)
    return video, text, joint, tuple(probes)


def _grad_norm(loss: Tensor, inputs: tuple[Tensor, ...]) -> Tensor:
    """L2 norm of ``d loss / d inputs`` over all of them (0 where the loss does not reach them)."""
    zero = loss.new_zeros((), dtype=torch.float32).detach()
    if not loss.requires_grad:
        return zero
    grads = torch.autograd.grad(loss, inputs, retain_graph=True, allow_unused=True)
    return torch.stack([zero, *(g.detach().float().pow(2).sum() for g in grads if g is not None)]).sum().sqrt()
