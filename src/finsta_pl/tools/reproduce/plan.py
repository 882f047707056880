"""What a reproduction runs: its sizes, and one :class:`Run` per number (table, row, column, seed) with the
shipped configs and overrides that make it (``finsta-pl reproduce``; runner.py runs them, report.py tabulates)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: the validation metric each task's table reads (higher is better everywhere).
METRIC = {"videoqa": "val/acc", "retrieval": "val/t2v_r1", "captioning": "val/cider", "mcqa": "val/acc",
          "inference": "val/acc", "action": "val/top1"}
COMPOSITIONAL = ("--data.init_args.split_lists={train: splits/compositional_train.txt, "
                 "val: splits/compositional_val.txt, test: splits/compositional_test.txt}")
SPLITS = ("standard", "compositional")
#: the paper's six ablation rows: (row name, the FinstaConfig switch turned off).
ABLATIONS = (("w/o PTC", "ptc"), ("w/o OSC", "osc"), ("w/o STGD", "stgd"),
             ("w/o temporal coreference edges", "temporal_edges"), ("w/o adverb nodes", "adverb_nodes"),
             ("w/o cross-modal edges", "crossmodal_edges"))
HOST_ONLY, JOINT, POSTTRAINED = "host only", "host + Finsta (joint)", "post-trained host, no graphs"
CLIP4CLIP = "clip4clip"
#: the post-training control: the built-in host post-trained on the same clips with its own contrastive loss
#: alone (no scene graphs, so no OSC, PTC or distillation); its rows tell Finsta's share of a post-trained
#: host's gain from what more training on the post-training captions gives by itself.
HOST_LOSS_ONLY = "small_vlm_host_loss_only"
HOST_LOSS_ONLY_POSTTRAIN = ("--model.init_args.finsta.enabled=false",)
POSTTRAINED_HOST_LOSS = "post-trained with the host loss only, no graphs"
#: the label-free arm (issue 22; experiments/videoqa_label_free.yaml as overrides, so any task takes it): the
#: motion detector's tracked boxes without its words, node features without label words, learned links.
LABEL_FREE = ("--data.init_args.graphs.detector_args={shape_labels: false}",
              "--data.init_args.graphs.dsg.class_agnostic=true", "--data.init_args.graphs.link.method=embedding",
              "--model.init_args.finsta.learned_links=true", "--model.init_args.finsta.dsg_label_words=false")
#: the capacity control: the same graphs, streams and learned links (the HSG's edges), without the alignment
#: objectives, so what it adds over the host is capacity and the graphs' inputs, not OSC/PTC/distillation.
NO_ALIGNMENT = ("--model.init_args.finsta.osc=false", "--model.init_args.finsta.ptc=false",
                "--model.init_args.finsta.distill=false")
LABELLED, CLASS_AGNOSTIC = "host + Finsta, labelled motion detector", "host + Finsta, class-agnostic boxes"
CAPACITY = "capacity control: class-agnostic, no OSC/PTC/distillation"
#: aligning where the task reads (issue 22, point 5): the built-in host at 8x8 patch tokens, DSG nodes pooled
#: from those tokens; with its own host-only reference, since the finer grid is more host.
TOKENS = ("--model.init_args.host.patch_grid=8",)
HOST_ONLY_TOKENS = "host only, 8x8 patch tokens"
CLASS_AGNOSTIC_TOKENS = "host + Finsta, class-agnostic boxes, regions on the 8x8 fusion tokens"
LABEL_FREE_TABLE = "label-free alignment: "
#: the label-free post-training (issue 22): the built-in host post-trained with Finsta on the label-free arm's
#: graphs (class-agnostic boxes, learned links), then fine-tuned without graphs like every post-trained row;
#: compared with the labelled post-training and the host-loss-only control on the compositional split.
LABEL_FREE_HOST = "small_vlm_label_free"
LABEL_FREE_POSTTRAIN_TABLE = "post-training without labels: "
POSTTRAINED_LABELLED = "post-trained with Finsta, labelled motion detector, no graphs"
POSTTRAINED_LABEL_FREE = "post-trained with Finsta, class-agnostic boxes, no graphs"


@dataclass(frozen=True)
class Size:
    """How big a reproduction is: the world, epochs, seeds, which tasks each table covers, and how many runs
    go at once (``jobs``: processes of one thread each)."""

    world: tuple[int, int, int]  # training, validation, test videos
    epochs: int
    posttrain_epochs: int
    seeds: tuple[int, ...]
    tasks: tuple[str, ...]
    compositional: tuple[str, ...]  # tasks that also get the compositional split
    ablation_tasks: tuple[str, ...]
    extra: tuple[str, ...] = ()  # further overrides of every run (frames, loader, trainer output)
    studies: bool = True  # robustness, zero-shot
    ablations: tuple[str, ...] = tuple(switch for _, switch in ABLATIONS)
    clip4clip: tuple[str, ...] = ()  # tasks that get the three rows with a (tiny, random) CLIP4Clip host
    controls: tuple[str, ...] = ()  # tasks that get the post-training control (and zero-shot, with studies)
    label_free: tuple[str, ...] = ()  # tasks that get the label-free table: host, both arms, the capacity control
    label_free_ablations: tuple[str, ...] = ()  # tasks whose ablation rows (``ablations``) run on the label-free arm
    label_free_tokens: tuple[str, ...] = ()  # tasks that get the 8x8-token rows
    label_free_splits: tuple[str, ...] = ("compositional",)  # the splits of the label-free tables (the targets')
    # the split of the ablation and 8x8-token rows on the label-free arm, and of the label-free post-training
    label_free_study_split: str = "compositional"
    label_free_posttrain: tuple[str, ...] = ()  # tasks that fine-tune a host post-trained label-free, and its control
    jobs: int = 2


#: what every reproduction changes in the shipped configs, to keep the full size near an hour and a half on
#: 2 cores: 4 frames a clip (the shipped 8 double each run's cost; 4 still show each motion), graphs built
#: in the run's own process (the pool keeps every core busy), validation only after the last epoch.
_REPRO = ("--data.init_args.clip.num_frames=4", "--data.init_args.loader.num_workers=0",
          "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false")
SIZES: dict[str, Size] = {
    "minimal": Size((24, 12, 8), 1, 1, (0,), ("videoqa",), (), ("videoqa",),
                    ("--config", "tests/configs/tiny.yaml"), studies=False, ablations=("ptc",), jobs=1),
    # Under 10 minutes on 2 cores: video QA only, both splits, the two alignment losses' ablations.
    "small": Size((120, 60, 30), 3, 3, (0, 1, 2), ("videoqa",), ("videoqa",), ("videoqa",), _REPRO,
                  studies=False, ablations=("ptc", "osc")),
    # Everything the issues ask for: every task on both splits as host only, joint (labelled detector) and
    # post-trained; the label-free arm and its capacity control for every task on both splits; post-training
    # against the host-loss-only control for every task (standard split), and label-free post-training against
    # the same control on the compositional split; the six ablations on the label-free arm (video QA) and on
    # the labelled one (video QA, retrieval); the CLIP4Clip rows and studies.  A fit two tables
    # share (the label-free tables' host and labelled rows are the task tables') runs once.
    "full": Size((200, 60, 30), 3, 3, (0, 1, 2), tuple(METRIC), tuple(METRIC), ("videoqa", "retrieval"),
                 _REPRO, clip4clip=("videoqa", "retrieval"), controls=tuple(METRIC),
                 label_free=tuple(METRIC), label_free_ablations=("videoqa",), label_free_tokens=("videoqa",),
                 label_free_splits=SPLITS, label_free_posttrain=tuple(METRIC)),
    # The label-free study of issue 22, trained longer than the full size's runs (the shipped world, 6 epochs):
    # on the compositional split, per task the host, the labelled arm, the class-agnostic arm and its capacity
    # control; on video QA also the six ablation rows on the class-agnostic arm and the 8x8-token rows.
    "label_free": Size((480, 120, 120), 6, 3, (0, 1, 2), (), (), (), _REPRO, studies=False,
                       label_free=("videoqa", "retrieval", "mcqa"), label_free_ablations=("videoqa",),
                       label_free_tokens=("videoqa",)),
}


@dataclass(frozen=True)
class Run:
    """One fit: where its number goes (table, row, column, seed), its configs and overrides, the metric.
    ``command`` is ``fit`` or ``validate``; ``host``: the enhanced host it loads or writes, named by the host
    (``small_vlm``, ``clip4clip``) or by how it was post-trained (``HOST_LOSS_ONLY``, ``LABEL_FREE_HOST``);
    ``needs_posttrain``: the
    post-training of its seed, split (``column``) and ``host`` must have run first; ``export``: a
    post-training, which writes that host."""

    table: str
    row: str
    column: str
    seed: int
    configs: tuple[str, ...]
    overrides: tuple[str, ...]
    metric: str
    command: str = "fit"
    needs_posttrain: bool = False
    host: str = "small_vlm"
    export: bool = False

    def args(self, size: Size, out: Path) -> list[str]:
        """The CLI arguments of this run."""
        n_train, n_val, n_test = size.world
        args = [self.command, *(a for c in self.configs for a in ("--config", c)), *size.extra,
                f"--seed_everything={self.seed}", f"--data.init_args.seed={self.seed}",
                f"--data.init_args.synthetic.num_train={n_train}", f"--data.init_args.synthetic.num_val={n_val}",
                f"--data.init_args.synthetic.num_test={n_test}"]
        if self.command == "fit":
            epochs = size.posttrain_epochs if self.export else size.epochs
            args += [f"--trainer.max_epochs={epochs}", f"--trainer.check_val_every_n_epoch={epochs}"]
        folder = out / "runs" / self.slug
        # One graph cache for every run: each seed's world is read by dozens of runs, which then detect each
        # source frame once and track each evaluation clip once (the graphs are the same, see graphs.cache).
        args += [f"--trainer.default_root_dir={folder}", f"--trainer.logger.init_args.save_dir={folder}",
                 "--data.init_args.graphs.cache=true", f"--data.init_args.graphs.cache_dir={out / 'graph_cache'}",
                 *self.overrides]
        host = enhanced_host(out, self.seed, self.column, self.host)
        if self.needs_posttrain:
            args.append(f"--model.init_args.host.init_from={host}")
        if self.export:
            args.append(f"--model.init_args.export_path={host}")
        return args

    @property
    def fit(self) -> tuple:
        """What makes the fit: two runs with the same are one fit, reported in both tables (e.g. a label-free
        table's host-only row is its task table's)."""
        return (self.command, self.column, self.seed, self.configs, self.overrides, self.metric,
                self.needs_posttrain, self.host, self.export)

    @property
    def slug(self) -> str:
        """A folder name for the run."""
        text = f"{self.table}-{self.row}-{self.column}-seed{self.seed}"
        return "".join(c if c.isalnum() else "_" for c in text).strip("_")

    @property
    def dependency(self) -> str | None:
        """The slug of the post-training this run starts from, if any."""
        return posttrain_run(self.seed, self.column, self.host, ()).slug if self.needs_posttrain else None


def enhanced_host(out: Path, seed: int, split: str = "standard", host: str = "small_vlm") -> Path:
    """Where the post-training of ``seed`` on ``split``'s training clips exports the enhanced ``host``."""
    return out / "hosts" / f"enhanced_{host}_{split}_seed{seed}.pt"


def clip_checkpoint(out: Path) -> Path:
    """The tiny random CLIP the CLIP4Clip rows use (written by :func:`write_clip_checkpoint`)."""
    return out / "tiny-clip"


def clip4clip_overrides(out: Path) -> tuple[str, ...]:
    """A task's built-in-host config turned into the same run with a tiny random CLIP4Clip host."""
    clip = clip_checkpoint(out)
    return ("--model.init_args.host.name=clip4clip", f"--model.init_args.host.checkpoint={clip}",
            f"--data.init_args.tokenizer={clip}", "--model.init_args.host.fusion_layers=1")


def split_overrides(split: str) -> tuple[str, ...]:
    """The data overrides that select ``split`` (the standard split is each config's own)."""
    return (COMPOSITIONAL,) if split == "compositional" else ()


def posttrain_run(seed: int, split: str, host: str, overrides: tuple[str, ...]) -> Run:
    """The post-training of ``seed`` on ``split``'s training clips (a compositional split's held-out
    combinations stay unseen), exporting the enhanced ``host``."""
    table = "posttrain" if host == "small_vlm" else f"posttrain ({host})"
    return Run(table, "post-training", split, seed, ("experiments/posttrain_synthetic.yaml",),
               (*overrides, *split_overrides(split)), "val/t2v_r1",
               host=host, export=True)


def _three_rows(task: str, table: str, split: str, seed: int, overrides: tuple[str, ...], host: str) -> list[Run]:
    metric = METRIC[task]
    host_only = (f"experiments/{task}_host_only.yaml",)
    return [Run(table, HOST_ONLY, split, seed, host_only, overrides, metric, host=host),
            Run(table, JOINT, split, seed, (f"experiments/{task}.yaml",), overrides, metric, host=host),
            Run(table, POSTTRAINED, split, seed, host_only, overrides, metric, needs_posttrain=True, host=host)]


def plan(size: Size, out: Path) -> list[Run]:
    """Every run of a reproduction, post-trainings first (each one that a row fine-tunes or validates)."""
    clip = clip4clip_overrides(out)
    runs: list[Run] = []
    for s in size.seeds:
        for task in size.tasks:
            for split in SPLITS if task in size.compositional else SPLITS[:1]:
                runs += _three_rows(task, task, split, s, split_overrides(split), "small_vlm")
        for task in size.clip4clip:
            runs += _three_rows(task, f"{task}, CLIP4Clip host (tiny, random init)", "standard", s, clip, CLIP4CLIP)
        runs += [Run(f"post-training control: {task}", POSTTRAINED_HOST_LOSS, "standard", s,
                     (f"experiments/{task}_host_only.yaml",), (), METRIC[task], needs_posttrain=True,
                     host=HOST_LOSS_ONLY) for task in size.controls]
        for task in size.ablation_tasks:
            runs += [Run(f"ablation: {task}", row, "standard", s, (f"experiments/{task}.yaml",),
                         (f"--model.init_args.finsta.{switch}=false",), METRIC[task])
                     for row, switch in ABLATIONS if switch in size.ablations]
        runs += _label_free_rows(size, s)
        if not size.studies:
            continue
        for rate in (0.25, 0.5):  # node drop in training and in evaluation (the graph builder serves both)
            runs.append(Run("robustness: videoqa", f"node drop {rate:.0%}", "standard", s, ("experiments/videoqa.yaml",),
                            (f"--data.init_args.graphs.node_drop={rate}",), METRIC["videoqa"]))
        zero_shot = [("random host", False, "small_vlm"), ("post-trained host", True, "small_vlm")]
        if size.controls:
            zero_shot.append(("host post-trained with its own loss only", True, HOST_LOSS_ONLY))
        for row, post, host in zero_shot:
            runs.append(Run("zero-shot retrieval", row, "standard", s, ("experiments/retrieval_host_only.yaml",), (),
                            METRIC["retrieval"], command="validate", needs_posttrain=post, host=host))
    # How each host is post-trained: Finsta with the shipped (labelled) graphs, or on the label-free arm's
    # graphs, or the host's own loss alone; the CLIP4Clip host with the shipped graphs.
    how = {"small_vlm": (), CLIP4CLIP: clip, HOST_LOSS_ONLY: HOST_LOSS_ONLY_POSTTRAIN, LABEL_FREE_HOST: LABEL_FREE}
    needed = sorted({(r.seed, SPLITS.index(r.column), r.host) for r in runs if r.needs_posttrain},
                    key=lambda k: (k[0], k[1], list(how).index(k[2])))
    return [posttrain_run(seed, SPLITS[split], host, how[host]) for seed, split, host in needed] + runs


def _label_free_rows(size: Size, seed: int) -> list[Run]:
    """The label-free table of each task (per ``label_free_splits``): host only (the reference), the labelled
    arm, the class-agnostic arm, its capacity control; on ``label_free_study_split`` the 8x8-token rows, the
    ablation rows on the class-agnostic arm, and the post-trained hosts (labelled, label-free, host loss only)
    fine-tuned without graphs."""
    runs = []
    for task in size.label_free:
        table, metric = LABEL_FREE_TABLE + task, METRIC[task]
        for split in size.label_free_splits:
            data = split_overrides(split)
            runs += [Run(table, HOST_ONLY, split, seed, (f"experiments/{task}_host_only.yaml",), data, metric),
                     Run(table, LABELLED, split, seed, (f"experiments/{task}.yaml",), data, metric),
                     Run(table, CLASS_AGNOSTIC, split, seed, (f"experiments/{task}.yaml",), (*LABEL_FREE, *data), metric),
                     Run(table, CAPACITY, split, seed, (f"experiments/{task}.yaml",),
                         (*LABEL_FREE, *NO_ALIGNMENT, *data), metric)]
    split = size.label_free_study_split
    data = split_overrides(split)
    for task in size.label_free_tokens:
        host_only = (f"experiments/{task}_host_only.yaml",)
        runs += [Run(LABEL_FREE_TABLE + task, HOST_ONLY_TOKENS, split, seed, host_only, (*TOKENS, *data), METRIC[task]),
                 Run(LABEL_FREE_TABLE + task, CLASS_AGNOSTIC_TOKENS, split, seed, (f"experiments/{task}.yaml",),
                     (*LABEL_FREE, *TOKENS, "--model.init_args.finsta.regions=tokens", *data), METRIC[task])]
    for task in size.label_free_ablations:
        runs += [Run(f"label-free ablation: {task}", row, split, seed, (f"experiments/{task}.yaml",),
                     (*LABEL_FREE, f"--model.init_args.finsta.{switch}=false", *data), METRIC[task])
                 for row, switch in ABLATIONS if switch in size.ablations]
    for task in size.label_free_posttrain:
        host_only, table = (f"experiments/{task}_host_only.yaml",), LABEL_FREE_POSTTRAIN_TABLE + task
        runs += [Run(table, HOST_ONLY, split, seed, host_only, data, METRIC[task]),
                 Run(table, POSTTRAINED_LABELLED, split, seed, host_only, data, METRIC[task], needs_posttrain=True),
                 Run(table, POSTTRAINED_LABEL_FREE, split, seed, host_only, data, METRIC[task], needs_posttrain=True,
                     host=LABEL_FREE_HOST),
                 Run(table, POSTTRAINED_HOST_LOSS, split, seed, host_only, data, METRIC[task], needs_posttrain=True,
                     host=HOST_LOSS_ONLY)]
    return runs
