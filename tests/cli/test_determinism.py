"""A shipped config reruns bit-identically on a multi-core CPU.

Without ``trainer.deterministic``, two seeded fits of ``experiments/videoqa.yaml`` on two threads already
differed after one step in 40 and 42 of 285 tensors in two tries (the host's video encoder and Finsta's input
projections, upstream of CPU's accumulating ``index_put``: the backward of indexing sums in thread order), and
eight epochs of ``make train TASK=videoqa`` ended at 0.904, 0.900 and 0.896 in three fresh clones.  The model
here keeps the shipped sizes (batch 32, width 128, 8 frames), where those kernels run on several threads; only
the world and the number of steps are small.
"""

from __future__ import annotations

from pathlib import Path

import torch

from tests.helpers import REPO, recorded_fit


def _fit(out: Path, name: str) -> tuple[list[float], dict[str, torch.Tensor]]:
    root = out / name
    args = ["--config", str(REPO / "experiments" / "videoqa.yaml"),
            "--data.init_args.synthetic.num_train=24", "--data.init_args.synthetic.num_val=12",
            "--data.init_args.synthetic.num_test=8", "--data.init_args.loader.num_workers=0",
            "--trainer.max_epochs=1", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=0",
            "--trainer.enable_progress_bar=false", "--trainer.callbacks=[]", "--trainer.accelerator=cpu",
            f"--trainer.default_root_dir={root}", f"--trainer.logger.init_args.save_dir={root}"]
    result = recorded_fit(out, name, args, env={"OMP_NUM_THREADS": "2"})  # nondeterminism needs >1 thread
    return [s["loss"] for s in result["steps"]], result["state"]


def test_two_seeded_fits_of_a_shipped_config_end_with_equal_weights(tiny_world: Path, tmp_path: Path) -> None:
    losses_a, weights_a = _fit(tmp_path, "a")
    losses_b, weights_b = _fit(tmp_path, "b")
    assert losses_a and losses_a == losses_b
    unequal = [k for k, v in weights_a.items() if not torch.equal(v, weights_b[k])]
    assert not unequal, f"{len(unequal)} of {len(weights_a)} tensors differ between two seeded fits: {unequal[:5]}"
