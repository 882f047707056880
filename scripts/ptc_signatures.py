"""Distinct PTC anchor signatures (anchor node labels per pair) in the first three collated training batches of
experiments/videoqa.yaml's data (issue 22, point 6).

    .venv/bin/python scripts/ptc_signatures.py                            # the MSRVTT-QA files
    .venv/bin/python scripts/ptc_signatures.py order_qa order_qa/videos   # the event-order questions
"""
import sys
from collections import Counter

import torch

from finsta_pl.data_modules import VideoQADataModule
from finsta_pl.data_modules.specs import ClipConfig, LoaderConfig

kwargs = dict(dataset="synthetic", clip=ClipConfig(num_frames=8, frame_size=64),
              loader=LoaderConfig(batch_size=32, num_workers=0))
if len(sys.argv) > 1:  # e.g. order_qa order_qa/videos
    kwargs.update(annotation_dir=sys.argv[1], video_dir=sys.argv[2])
dm = VideoQADataModule(**kwargs)
dm.setup("fit")
torch.manual_seed(0)
loader = dm.train_dataloader()
for n, batch in enumerate(loader):
    ptc, labels = batch.ptc, [w for g in batch.tsg.labels for w in g]
    sigs = Counter()
    with_adverb = 0
    for p in range(ptc.num_pairs):
        nodes = ptc.anchor_nodes[ptc.anchor_seg == p].tolist()
        sig = " + ".join(labels[i] for i in nodes)
        sigs[sig] += 1
        with_adverb += len(nodes) > 1
    print(f"batch {n}: {batch.num_texts} questions, {ptc.num_pairs} PTC pairs ({with_adverb} with adverb nodes), "
          f"{len(sigs)} distinct signatures: {dict(sigs.most_common())}")
    if n == 2:
        break
