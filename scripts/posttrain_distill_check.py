"""How much the pooled vs token-level distillation targets say about a clip (docs/RESULTS-posttrain.md).

    OMP_NUM_THREADS=1 .venv/bin/python scripts/posttrain_distill_check.py CKPT [--batches 3] [--token-distill]

For a post-training checkpoint, over validation batches: the distillation loss of the trained student, and the
loss of a constant student that always predicts the batch-mean teacher.  When the two are close, the target is
mostly a component shared by every clip, and matching it teaches the host little about any one clip.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import finsta_pl  # noqa: F401
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("ckpt")
    p.add_argument("--batches", type=int, default=3)
    p.add_argument("--token-distill", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(1)
    from finsta_pl.cli import build_cli, expand_config_args
    from finsta_pl.graphs.container import NODE
    from finsta_pl.nn.finsta import _roi_pool

    args = ["--config", str(REPO / "experiments" / "posttrain_synthetic.yaml"), "--data.init_args.loader.num_workers=0",
            f"--model.init_args.finsta.token_distill={str(a.token_distill).lower()}"]
    cli = build_cli(expand_config_args(args), run=False)
    model, dm = cli.model, cli.datamodule
    model.load_state_dict(torch.load(a.ckpt, map_location="cpu", weights_only=False)["state_dict"])
    model.eval()
    dm.setup("fit")
    rows: dict[str, list[tuple[float, float]]] = {}

    def add(name: str, student: torch.Tensor, teacher: torch.Tensor) -> None:
        trained = F.cosine_similarity(student, teacher, dim=-1)
        mean = F.cosine_similarity(teacher.mean(0, keepdim=True), teacher, dim=-1)
        rows.setdefault(name, []).append((float(1 - trained.mean()), float(1 - mean.mean())))

    with torch.no_grad():
        for k, batch in enumerate(dm.val_dataloader()):
            if k == a.batches:
                break
            host, fin = model.host, model.finsta
            v = host.encode_video(batch.frames)
            t = host.encode_text(batch.text_ids)
            j = host.fuse(v.select(batch.text_sample), t)
            out = fin(batch, host, v, t, j)
            h = fin.objectives.distill_heads
            add("video pooled <- DSG mean", h["video"](v.pooled), out.video)
            add("text pooled <- TSG mean", h["text"](t.pooled), out.text)
            add("joint <- HSG readout", h["joint"](j), out.joint)
            # Token level: recompute the DSG node states and the host's tokens under each object box.
            dsg = batch.dsg
            a_d = fin._active(dsg)
            h_d, _ = fin._dsg_features(dsg, host, v, a_d)
            h_d = fin._recurrent(fin.dsg_blocks, dsg, fin.in_norm(h_d), ("attribute", "subject", "object", "adverb", "scene"), a_d, fin.stgd)
            obj = (dsg.node_type == NODE["object"]) & a_d
            tok = _roi_pool(host.token_grid(v), dsg, obj)[obj]
            student = fin.objectives.token_heads["video"](tok) if hasattr(fin.objectives, "token_heads") else tok
            add("video tokens @ box <- DSG object node" + ("" if hasattr(fin.objectives, "token_heads") else " (no head: untrained)"),
                student, h_d[obj])
    for name, vals in rows.items():
        tr = sum(x for x, _ in vals) / len(vals)
        mb = sum(y for _, y in vals) / len(vals)
        print(f"{name:50s} trained student 1-cos {tr:.3f} | batch-mean teacher 1-cos {mb:.3f}")


if __name__ == "__main__":
    main()
