"""Linear probes of the built-in host's frozen features on the embedded world (docs/RESULTS-posttrain.md).

    OMP_NUM_THREADS=1 .venv/bin/python scripts/posttrain_probe.py HOST [HOST ...] [--json out.json]

``HOST``: ``random`` (a fresh host, seed 0), an exported enhanced host (``*.pt`` from post-training) or a task
checkpoint (``*.ckpt``; its ``host.*`` weights).  The world is the default one (480/120/120).  For every host the
script encodes each QA sample of train and val (segment-centre frames, no random offsets) and fits a
multinomial logistic regression (torch, full batch, L2) on train, reporting val accuracy for:

* video-level gold labels from ``scene_graphs/video{N}.json`` of the main subject (object 0): colour, shape,
  the colour-shape *binding* (12 classes), its event predicate, direction (move clips), speed, the number of
  objects, and the spatial relation of object 0 to object 1 at the middle keyframe; each from the pooled clip
  feature (``video.pooled``, what post-training contrasts and distils into) and from the concatenated
  per-frame tokens (``video.frames``, [T*d]);
* the QA answer from the host's *joint* feature (the fusion of the question with the video tokens, what the
  QA head reads), per question template: how much of the answer a frozen host hands to a linear head.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from collections import defaultdict
from pathlib import Path

import finsta_pl  # noqa: F401  (before lightning)
import torch

from finsta_pl.data_modules import ClipConfig, LoaderConfig, VideoQADataModule
from finsta_pl.data_modules.synthetic import WorldConfig, ensure_world
from finsta_pl.hosts.base import HostConfig
from finsta_pl.hosts.io import load_host_weights
from finsta_pl.hosts.registry import build_host

HOST = HostConfig(dim=128, heads=4, video_layers=2, text_layers=2, fusion_layers=1, dropout=0.0)
# Sampled frame 4 of 8 (segment centres of 16 source frames: 1, 3, ..., 15) is source frame 9.
ROI_FRAME, ROI_SOURCE_FRAME = 4, 9
TEMPLATES = ("color", "shape", "direction", "speed", "count", "action")


def video_labels(world: Path, video: str) -> dict[str, str]:
    g = json.loads((world / "scene_graphs" / f"{video}.json").read_text())
    o = g["objects"][0]
    e = next(e for e in g["events"] if e["subject"] == 0)
    box = next(b["box"] for f in g["frames"] if f["t"] == ROI_SOURCE_FRAME for b in f["boxes"] if b["object"] == 0)
    out = {"colour": o["color"], "shape": o["shape"], "binding": f"{o['color']} {o['shape']}", "size": o["size"],
           "box": [c / g["frame_size"][0] for c in box],
           "predicate": e["predicate"], "count": str(len(g["objects"]))}
    if e["predicate"] == "move":
        out["direction"] = e["direction"]
    if "speed" in e:
        out["speed"] = e["speed"]
    mid = g["num_frames"] // 2
    rel = [r["predicate"] for r in g["relations"] if r["t"] == mid and r["subject"] == 0 and r["object"] == 1]
    if rel:
        out["relation"] = rel[0]
    return out


def load(spec: str, info: dict) -> torch.nn.Module:
    torch.manual_seed(0)
    host = build_host(HOST, info)
    if spec == "random":
        return host.eval()
    if spec.endswith(".ckpt"):
        state = torch.load(spec, map_location="cpu", weights_only=False)["state_dict"]
        host.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("host.")})
    else:
        load_host_weights(host, info, spec)
    return host.eval()


@torch.no_grad()
def encode(host: torch.nn.Module, dm: VideoQADataModule, split: str) -> dict:
    loader = dm._loader(split, False)
    rows = defaultdict(list)
    for batch in loader:
        v = host.encode_video(batch.frames)
        t = host.encode_text(batch.text_ids)
        j = host.fuse(v.select(batch.text_sample), t)
        rows["pooled"].append(v.pooled)
        maps = v.maps[:, ROI_FRAME]
        rows["grid_maps"].append(maps)  # stem output, 8x8
        rows["grid_pool4"].append(torch.nn.functional.adaptive_avg_pool2d(maps, host.config.patch_grid))
        rows["grid_tokens"].append(host.token_grid(v)[:, ROI_FRAME])  # what the fusion reads
        rows["frames"].append(v.frames.flatten(1))
        rows["joint"].append(j)
        rows["label"].append(batch.targets["label"])
        rows["index"].append(batch.targets["index"])
    return {k: torch.cat(v) for k, v in rows.items()}


def roi(grid: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
    """Area-weighted mean of the cells of ``grid [N, d, h, w]`` under ``box [N, 4]`` (normalised x1 y1 x2 y2)."""
    _, _, h, w = grid.shape
    ys, xs = torch.arange(h) / h, torch.arange(w) / w
    ox = (torch.minimum(box[:, 2:3], xs + 1 / w) - torch.maximum(box[:, 0:1], xs)).clamp(min=0)
    oy = (torch.minimum(box[:, 3:4], ys + 1 / h) - torch.maximum(box[:, 1:2], ys)).clamp(min=0)
    weight = oy[:, :, None] * ox[:, None, :]
    weight = weight / weight.sum((1, 2), keepdim=True).clamp(min=1e-9)
    return (grid * weight[:, None]).sum((2, 3))


def fit_probe(xtr: torch.Tensor, ytr: torch.Tensor, xva: torch.Tensor, yva: torch.Tensor, classes: int,
              wd: float = 1e-3, steps: int = 300) -> float:
    mean, std = xtr.mean(0), xtr.std(0).clamp(min=1e-6)
    xtr, xva = (xtr - mean) / std, (xva - mean) / std
    torch.manual_seed(0)
    lin = torch.nn.Linear(xtr.shape[1], classes)
    opt = torch.optim.LBFGS(lin.parameters(), lr=0.5, max_iter=steps, history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(lin(xtr), ytr) + wd * lin.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return float((lin(xva).argmax(-1) == yva).float().mean())


def probe(host_spec: str, dm: VideoQADataModule, world: Path) -> dict:
    host = load(host_spec, dm.info())
    feats = {s: encode(host, dm, s) for s in ("train", "val")}
    records = {s: dm.records[s] for s in ("train", "val")}
    out: dict[str, dict[str, float]] = {}
    # Video-level probes: one row per video (its first QA sample).
    per_split = {}
    for s in ("train", "val"):
        recs = records[s] if s != "train" else [r for r in records[s] if dm.answers.label(r.answer) >= 0]
        first: dict[str, int] = {}
        for k, r in enumerate(recs):
            first.setdefault(r.video, k)
        per_split[s] = (list(first), torch.tensor(list(first.values())))
    labels = {s: [video_labels(world, v) for v in per_split[s][0]] for s in ("train", "val")}
    for key in ("colour", "shape", "binding", "predicate", "direction", "speed", "count", "relation"):
        names = sorted({d[key] for s in labels for d in labels[s] if key in d})
        for feat in ("pooled", "frames"):
            xs, ys = {}, {}
            for s in ("train", "val"):
                keep = [i for i, d in enumerate(labels[s]) if key in d]
                xs[s] = feats[s][feat][per_split[s][1][keep]]
                ys[s] = torch.tensor([names.index(labels[s][i][key]) for i in keep])
            out.setdefault(feat, {})[key] = fit_probe(xs["train"], ys["train"], xs["val"], ys["val"], len(names))
    # The main subject at one frame, RoI-pooled at its gold box from the stem maps (8x8), from the 4x4 average
    # pooling that makes the patch tokens, and from the tokens after the video Transformer (the fusion's input).
    for key in ("shape", "colour", "size"):
        names = sorted({d[key] for s in labels for d in labels[s]})
        for feat in ("grid_maps", "grid_pool4", "grid_tokens"):
            xs = {s: roi(feats[s][feat][per_split[s][1]], torch.tensor([d["box"] for d in labels[s]])) for s in labels}
            ys = {s: torch.tensor([names.index(d[key]) for d in labels[s]]) for s in labels}
            out.setdefault("roi_" + feat[5:], {})[key] = fit_probe(xs["train"], ys["train"], xs["val"], ys["val"], len(names))
    # QA from the frozen joint feature, per template.
    cat = {s: torch.tensor([int(r.qtype) if r.qtype.isdigit() else -1 for r in
                            (records[s] if s != "train" else [r for r in records[s] if dm.answers.label(r.answer) >= 0])])
           for s in ("train", "val")}
    n = len(dm.answers.answers)
    ytr, yva = feats["train"]["label"], feats["val"]["label"]
    out["joint_qa"] = {"all": fit_probe(feats["train"]["joint"], ytr, feats["val"]["joint"], yva, n)}
    if (cat["val"] >= 0).all():
        for c, name in enumerate(TEMPLATES):
            tr, va = cat["train"] == c, cat["val"] == c
            out["joint_qa"][name] = fit_probe(feats["train"]["joint"][tr], ytr[tr], feats["val"]["joint"][va], yva[va], n)
    return out


@torch.no_grad()
def qa_per_template(ckpt: str, dm: VideoQADataModule) -> dict[str, float]:
    """Val accuracy of a fine-tuned VideoQATask checkpoint (graphs off), overall and per question template."""
    from finsta_pl.tasks import VideoQATask

    model = VideoQATask.load_from_checkpoint(ckpt, map_location="cpu", weights_only=False).eval()
    correct, cats = [], []
    for batch in dm._loader("val", False):
        logits = model.head(model.features(batch).joint)
        correct.append((logits.argmax(-1) == batch.targets["label"]).float())
    correct = torch.cat(correct)
    cats = torch.tensor([int(r.qtype) for r in dm.records["val"]])
    out = {"all": float(correct.mean())}
    out.update({name: float(correct[cats == c].mean()) for c, name in enumerate(TEMPLATES)})
    return out


def main(argv: list[str] | None = None) -> None:
    global HOST
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("hosts", nargs="+")
    parser.add_argument("--json")
    parser.add_argument("--patch-grid", type=int, default=HOST.patch_grid,
                        help="token grid of the probed host (only for `random`: exported hosts keep theirs)")
    parser.add_argument("--qa", action="store_true", help="HOSTs are fine-tuned VideoQATask checkpoints: "
                        "report val accuracy per question template instead of probing")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    HOST = replace(HOST, patch_grid=args.patch_grid)
    world = ensure_world(WorldConfig())
    dm = VideoQADataModule(synthetic=WorldConfig(), build_graphs=False, clip=ClipConfig(num_frames=8, random_offsets=False),
                           loader=LoaderConfig(batch_size=64, num_workers=0))
    dm.setup("fit")
    results = {}
    for spec in args.hosts:
        results[spec] = qa_per_template(spec, dm) if args.qa else probe(spec, dm, world)
        print(spec, json.dumps(results[spec]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
