"""The embedded world laid out as each real dataset is distributed, so every reader and every
``experiments/<dataset>_<task>.yaml`` runs end to end on generated data with one switch:
``FINSTA_PL_DATA_ROOT=<world>/datasets`` (``<world>`` is the world's cache folder).

    datasets/msrvtt/       annotation/ (official JSON), msrvtt_data/ (CLIP4Clip zip: MSRVTT_data.json, 9k/7k
                           lists = train+val / train videos, JSFusion test = the test videos' first captions),
                           msrvtt_qa/, msrvtt_mc/, videos/
    datasets/msvd/         msvd_qa/ (1-based ids, youtube_mapping.txt), YouTubeClips/<clip name>.avi
    datasets/tgif/         dataset/{Train,Test}_{frameqa,action}_question.csv, gifs/tumblr_syn<N>_250.gif
    datasets/how2qa/       how2qa/how2QA_*.csv over the long videos' halves, videos/pair<A>_<B>.mp4
    datasets/didemo/       data/{train,val,test}_data.json, videos/<user>@N00_<pair>_<secret>.mov
    datasets/lsmdc/        annotations/LSMDC16_*.csv, videos/0001_SYNTHETIC/<clip id>.avi
    datasets/activitynet/  captions/{train,val_1,val_2}.json, videos/v_pair<A>_<B>.mp4
    datasets/youcook2/     annotations/youcookii_annotations_trainval.json, raw_videos/<subset>/pair<A>_<B>.mp4
    datasets/violin/       violin_annotation.json, videos/
    datasets/kinetics400/  annotations/kinetics_{train,val,test}.csv (test without labels),
                           videos/<label>/syn<N>_000000_000002.mp4
    datasets/ssv2/         labels/something-something-v2-{train,validation,test,labels}.json, videos/<id>.webm

Videos are relative symbolic links to the world's own files (the decoders probe content, not the name's
extension), except TGIF's, which are real GIFs written from the frames (GIFs take a different decoder).  Test
splits that a dataset does not label (Kinetics, SSv2, YouCook2) are written the way the release has them.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterable

import numpy as np

SSV2_TEMPLATES = {
    "move left": "Moving [something] to the left", "move right": "Moving [something] to the right",
    "move up": "Moving [something] up", "move down": "Moving [something] down",
    "approach": "Moving [something] closer to [something]", "grow": "Making [something] bigger",
    "appear": "Showing [something] appearing"}
_FRAMEQA_TYPE = {0: 2, 1: 0, 2: 3, 3: 0, 4: 1, 5: 0}  # world template -> color / object / location / number
_SPLIT_NAMES = {"msrvtt": {"train": "train", "val": "validate", "test": "test"},
                "youcook2": {"train": "training", "val": "validation", "test": "testing"},
                "violin": {"train": "train", "val": "validate", "test": "test"}}


def write_gif(path: Path, frames_bgr: np.ndarray, fps: int) -> None:
    """An animated GIF of BGR frames (TGIF-QA ships GIFs; they take Pillow, not decord)."""
    from PIL import Image

    images = [Image.fromarray(np.ascontiguousarray(f[..., ::-1])) for f in frames_bgr]
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)


def tgif_gif_path(out: Path, video_id: int) -> Path:
    """Where the TGIF layout keeps clip ``video_id`` as a GIF."""
    return Path(out) / "datasets" / "tgif" / "gifs" / f"tumblr_syn{video_id}_250.gif"


def _link(target: Path, link: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(os.path.relpath(target, link.parent), link)


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, separators=(",", ":")) + "\n")


def _write_rows(path: Path, rows: Iterable[Iterable[Any]], delimiter: str = ",", header: Iterable[str] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
        writer = csv.writer(f, delimiter=delimiter, lineterminator="\n", quoting=quoting, escapechar="\\")
        if header is not None:
            writer.writerow(header)
        writer.writerows(rows)


class _World:
    """The generated files the layouts are made from."""

    def __init__(self, out: Path, graphs: list[dict[str, Any]], splits: list[str]) -> None:
        self.out, self.graphs, self.splits = Path(out), graphs, splits
        self.qa = {s: json.loads((self.out / "msrvtt_qa" / f"{s}_qa.json").read_text()) for s in ("train", "val", "test")}
        self.paragraphs = {s: json.loads((self.out / "activitynet" / name).read_text())
                           for s, name in (("train", "train.json"), ("val", "val_1.json"), ("test", "val_2.json"))}

    def video(self, vid: int) -> Path:
        return self.out / "videos" / f"video{vid}.mp4"

    def of(self, split: str) -> list[int]:
        return [v for v, s in enumerate(self.splits) if s == split]


def _msrvtt(w: _World, root: Path) -> None:
    shutil.copytree(w.out / "msrvtt", root / "annotation")
    shutil.copytree(w.out / "msrvtt_qa", root / "msrvtt_qa")
    shutil.copytree(w.out / "msrvtt_mc", root / "msrvtt_mc")
    _link(w.out / "videos", root / "videos")
    merged: dict[str, list] = {"videos": [], "sentences": []}
    for name in ("train_val_videodatainfo.json", "test_videodatainfo.json"):
        data = json.loads((w.out / "msrvtt" / name).read_text())
        merged["videos"] += data["videos"]
        merged["sentences"] += data["sentences"]
    _write_json(root / "msrvtt_data" / "MSRVTT_data.json", merged)
    _write_rows(root / "msrvtt_data" / "MSRVTT_train.9k.csv", ([f"video{v}"] for v in w.of("train") + w.of("val")),
                header=["video_id"])
    _write_rows(root / "msrvtt_data" / "MSRVTT_train.7k.csv", ([f"video{v}"] for v in w.of("train")), header=["video_id"])
    _write_rows(root / "msrvtt_data" / "MSRVTT_JSFUSION_test.csv",
                ([f"ret{v}", f"msr{v}", f"video{v}", w.graphs[v]["captions"][0]] for v in w.of("test")),
                header=["key", "vid_key", "video_id", "sentence"])


def _msvd(w: _World, root: Path) -> None:
    for split, records in w.qa.items():  # MSVD-QA: 1-based ids, no category_id
        _write_json(root / "msvd_qa" / f"{split}_qa.json",
                    [{"answer": r["answer"], "id": r["id"], "question": r["question"], "video_id": r["video_id"] + 1}
                     for r in records])
    names = {v: f"syn{v:05d}_0_2" for v in range(len(w.graphs))}
    (root / "msvd_qa" / "youtube_mapping.txt").write_text("".join(f"{n} vid{v + 1}\n" for v, n in names.items()))
    for v, name in names.items():
        _link(w.video(v), root / "YouTubeClips" / f"{name}.avi")


def _tgif(w: _World, root: Path) -> None:
    files = {"train": "Train", "val": "Test"}  # TGIF-QA has train and test only; the world's val is its test
    labels = sorted(SSV2_TEMPLATES)
    for split, prefix in files.items():
        # As the release: ``vid_id`` names the question (FRAMEQA<n>), ``key`` the GIF its questions share.
        frameqa = [[f"tumblr_syn{r['video_id']}_250", r["question"], r["answer"], _FRAMEQA_TYPE[r["category_id"]],
                    f"FRAMEQA{r['id']}", r["video_id"], w.graphs[r["video_id"]]["captions"][0]] for r in w.qa[split]]
        _write_rows(root / "dataset" / f"{prefix}_frameqa_question.csv", frameqa, "\t",
                    ["gif_name", "question", "answer", "type", "vid_id", "key", "description"])
        action = []
        for v in w.of(split):
            graph, rng = w.graphs[v], np.random.default_rng([v, 11])
            subject = graph["objects"][graph["events"][0]["subject"]]
            wrong = [labels[i] for i in rng.permutation(len(labels)) if labels[i] != graph["action_label"]][:4]
            options = [graph["action_label"], *wrong]
            order = rng.permutation(5)
            action.append([f"tumblr_syn{v}_250", f"what does the {subject['color']} {subject['shape']} do ?",
                           *(options[i] for i in order), int(np.argmax(order == 0)), f"ACTION{v}", v])
        _write_rows(root / "dataset" / f"{prefix}_action_question.csv", action, "\t",
                    ["gif_name", "question", "a1", "a2", "a3", "a4", "a5", "answer", "vid_id", "key"])


def _halves(w: _World, split: str) -> Iterable[tuple[str, dict[str, Any], int]]:
    """(pair name without ``v_``, its ActivityNet entry, half 0 or 1) for the long videos of a split."""
    for key, entry in w.paragraphs[split].items():
        for half in (0, 1):
            yield key[2:], entry, half


def _how2qa(w: _World, root: Path) -> None:
    names = {"train": "how2QA_train_release.csv", "val": "how2QA_val_release.csv", "test": "how2QA_test_public_release.csv"}
    for split, name in names.items():
        rows = []
        for pair, entry, half in _halves(w, split):
            a, b = (int(x) for x in pair[4:].split("_"))
            clip = (a, b)[half]
            start, end = entry["timestamps"][half]
            wrong = w.graphs[clip]["hard_negatives"][0][:3]
            rows.append([pair, f"[{start}:{end}]", *wrong, "which sentence describes this part of the video?",
                         w.graphs[clip]["captions"][0]])
            if half == 0:
                _link(w.out / "activitynet" / "videos" / f"v_{pair}.mp4", root / "videos" / f"{pair}.mp4")
        _write_rows(root / "how2qa" / name, rows)


def _didemo(w: _World, root: Path) -> None:
    names = {"train": "train_data.json", "val": "val_data.json", "test": "test_data.json"}
    k = 0
    for split, name in names.items():
        records = []
        for key, entry in w.paragraphs[split].items():
            video = f"{1000 + k}@N00_{key[2:]}_5ec7e7.mov"
            _link(w.out / "activitynet" / "videos" / f"{key}.mp4", root / "videos" / video)
            for sentence, (start, end) in zip(entry["sentences"], entry["timestamps"]):
                chunk = int(start // 5)  # the long videos are 4 s: one 5-second chunk
                records.append({"annotation_id": k, "description": sentence.strip().rstrip(".").lower(), "video": video,
                                "times": [[chunk, int(end // 5)]] * 4, "dl_link": f"synthetic://{key}",
                                "num_segments": 5})
                k += 1
        _write_json(root / "data" / name, records)


def _lsmdc(w: _World, root: Path) -> None:
    names = {"train": "LSMDC16_annos_training.csv", "val": "LSMDC16_annos_val.csv",
             "test": "LSMDC16_challenge_1000_publictect.csv"}
    for split, name in names.items():
        rows = []
        for v in w.of(split):
            start, end = (f"00.{v // 60:02d}.{v % 60:02d}.{ms}" for ms in ("000", "900"))  # unique per clip
            clip = f"0001_SYNTHETIC_{start}-{end}"
            _link(w.video(v), root / "videos" / "0001_SYNTHETIC" / f"{clip}.avi")
            captions = w.graphs[v]["captions"][:1] if split == "test" else w.graphs[v]["captions"]
            rows += [[clip, start, end, start, end, "SOMEONE sees " + c[:1].lower() + c[1:] + "."] for c in captions]
        _write_rows(root / "annotations" / name, rows, "\t")


def _youcook2(w: _World, root: Path) -> None:
    database = {}
    for split, subset in _SPLIT_NAMES["youcook2"].items():
        for key, entry in w.paragraphs[split].items():
            annotations = [] if split == "test" else [
                {"id": i, "segment": [int(s), int(e)], "sentence": text.strip().rstrip(".").lower()}
                for i, (text, (s, e)) in enumerate(zip(entry["sentences"], entry["timestamps"]))]
            database[key[2:]] = {"annotations": annotations, "duration": entry["duration"], "recipe_type": "0",
                                 "subset": subset, "video_url": f"synthetic://{key}"}
            _link(w.out / "activitynet" / "videos" / f"{key}.mp4", root / "raw_videos" / subset / f"{key[2:]}.mp4")
    _write_json(root / "annotations" / "youcookii_annotations_trainval.json", {"database": database})


def _kinetics(w: _World, root: Path) -> None:
    header = ["label", "youtube_id", "time_start", "time_end", "split", "is_cc"]
    for split in ("train", "val", "test"):
        rows = []
        for v in w.of(split):
            label = w.graphs[v]["action_label"]
            rows.append([label, f"syn{v}", 0, 2, split, 0] if split != "test" else [f"syn{v}", 0, 2, split])
            _link(w.video(v), root / "videos" / label.replace(" ", "_") / f"syn{v}_000000_000002.mp4")
        _write_rows(root / "annotations" / f"kinetics_{split}.csv", rows,
                    header=header if split != "test" else ["youtube_id", "time_start", "time_end", "split"])


def _ssv2(w: _World, root: Path) -> None:
    labels = {t.replace("[", "").replace("]", ""): str(i) for i, t in enumerate(SSV2_TEMPLATES.values())}
    _write_json(root / "labels" / "something-something-v2-labels.json", labels)
    names = {"train": "train", "val": "validation", "test": "test"}
    for split, name in names.items():
        items = []
        for v in w.of(split):
            template = SSV2_TEMPLATES[w.graphs[v]["action_label"]]
            shape = w.graphs[v]["objects"][0]["shape"]
            item = {"id": str(20000 + v), "label": template.replace("[something]", shape, 1).lower(),
                    "template": template, "placeholders": [shape]}
            items.append(item if split != "test" else {"id": item["id"]})
            _link(w.video(v), root / "videos" / f"{20000 + v}.webm")
        _write_json(root / "labels" / f"something-something-v2-{name}.json", items)


def _violin(w: _World, root: Path) -> None:
    shutil.copy(w.out / "violin" / "violin_annotation.json", root / "violin_annotation.json")
    _link(w.out / "videos", root / "videos")


def _activitynet(w: _World, root: Path) -> None:
    for name in ("train.json", "val_1.json", "val_2.json", "train_ids.json", "val_ids.json", "test_ids.json"):
        (root / "captions").mkdir(parents=True, exist_ok=True)
        shutil.copy(w.out / "activitynet" / name, root / "captions" / name)
    _link(w.out / "activitynet" / "videos", root / "videos")


LAYOUTS = {"msrvtt": _msrvtt, "msvd": _msvd, "tgif": _tgif, "how2qa": _how2qa, "didemo": _didemo, "lsmdc": _lsmdc,
           "activitynet": _activitynet, "youcook2": _youcook2, "violin": _violin, "kinetics400": _kinetics,
           "ssv2": _ssv2}


def write_dataset_layouts(out: Path, graphs: list[dict[str, Any]], splits: list[str]) -> None:
    """Write ``out/datasets/<dataset>/`` for every dataset of :data:`LAYOUTS` (TGIF's GIFs are written per clip
    by the generator, :func:`tgif_gif_path`)."""
    world = _World(out, graphs, splits)
    for name, write in LAYOUTS.items():
        root = Path(out) / "datasets" / name
        root.mkdir(parents=True, exist_ok=True)
        write(world, root)
