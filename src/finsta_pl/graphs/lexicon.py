"""Which caption nouns name which detector classes: a shipped lexicon for the COCO, Action Genome and VidVRD
classes, used by label linking (``graphs/hsg.py``).

A trained detector says "person", "dog", "couch", "domestic_cat"; people write "a chef", "the puppy", "a sofa",
"her kitten".  :func:`concept` maps both sides onto one canonical class name, so a caption noun links to a
track when they name the same thing, not only when they are the same string.  The lists are hand-written
(hyponyms and common synonyms of each class as they occur in MSR-VTT/ActivityNet/LSMDC-style text), small on
purpose: a word missing here costs a link, a wrong entry costs a wrong one.
"""

from __future__ import annotations

from functools import lru_cache

#: canonical class -> the words (caption nouns and other datasets' class names) that name it.
CLASSES: dict[str, tuple[str, ...]] = {
    "person": ("person", "people", "man", "men", "woman", "women", "boy", "girl", "kid", "child", "children",
               "baby", "toddler", "guy", "lady", "gentleman", "teenager", "teen", "adult", "player", "chef",
               "cook", "athlete", "dancer", "singer", "actor", "actress", "student", "teacher", "doctor",
               "worker", "driver", "rider", "skier", "surfer", "swimmer", "runner", "host", "reporter",
               "someone", "somebody", "crowd", "audience", "team", "couple", "family", "mother",
               "father", "mom", "dad", "son", "daughter", "brother", "sister", "friend", "human", "individual",
               "soldier", "police", "policeman", "officer", "musician", "guitarist", "drummer", "gamer",
               "customer", "spectator", "fan", "he", "she", "they"),
    "dog": ("dog", "puppy", "pup", "doggy", "hound", "poodle", "terrier", "retriever", "bulldog", "labrador"),
    "cat": ("cat", "kitten", "kitty", "domestic cat"),
    "horse": ("horse", "pony", "foal", "stallion", "mare"),
    "cow": ("cow", "cattle", "bull", "calf", "ox"),
    "sheep": ("sheep", "lamb", "ram"),
    "bird": ("bird", "parrot", "pigeon", "duck", "chicken", "hen", "eagle", "owl", "penguin", "seagull"),
    "bear": ("bear", "grizzly"),
    "panda": ("panda", "giant panda", "red panda"),
    "monkey": ("monkey", "ape", "chimpanzee", "gorilla"),
    "rabbit": ("rabbit", "bunny", "hare"),
    "hamster": ("hamster", "gerbil"),
    "snake": ("snake", "python", "cobra", "serpent"),
    "lizard": ("lizard", "gecko", "iguana"),
    "turtle": ("turtle", "tortoise"),
    "whale": ("whale", "dolphin", "orca"),
    "antelope": ("antelope", "deer", "gazelle"),
    "elephant": ("elephant",), "zebra": ("zebra",), "giraffe": ("giraffe",), "lion": ("lion", "lioness"),
    "tiger": ("tiger",), "fox": ("fox",), "squirrel": ("squirrel", "chipmunk"),
    "car": ("car", "automobile", "sedan", "suv", "taxi", "cab", "jeep", "vehicle", "racecar"),
    "truck": ("truck", "lorry", "pickup", "van"),
    "bus": ("bus",),
    "train": ("train", "locomotive", "subway", "tram"),
    "motorcycle": ("motorcycle", "motorbike", "scooter", "moped"),
    "bicycle": ("bicycle", "bike"),
    "airplane": ("airplane", "plane", "aeroplane", "jet", "aircraft"),
    "boat": ("boat", "watercraft", "ship", "canoe", "kayak", "yacht", "sailboat", "ferry"),
    "ball": ("ball", "sports ball", "football", "soccer ball", "basketball", "volleyball", "baseball"),
    "couch": ("couch", "sofa"),
    "tv": ("tv", "television", "monitor", "screen"),
    "cell phone": ("cell phone", "phone", "cellphone", "smartphone", "mobile"),
    "laptop": ("laptop", "computer", "notebook computer"),
    "cup": ("cup", "mug", "glass", "wine glass"),
    "bottle": ("bottle", "flask"),
    "dining table": ("dining table", "table", "desk"),
    "chair": ("chair", "stool", "armchair"),
    "bed": ("bed", "mattress"),
    "book": ("book", "novel"),
    "paper": ("paper", "notebook", "document"),
    "bag": ("bag", "handbag", "purse", "backpack", "suitcase", "luggage"),
    "clothes": ("clothes", "clothing", "shirt", "jacket", "coat", "dress", "sweater", "pants"),
    "shoe": ("shoe", "sneaker", "boot", "sandal"),
    "food": ("food", "meal", "groceries", "sandwich", "pizza", "cake", "donut", "hot dog"),
    "refrigerator": ("refrigerator", "fridge"),
    "cabinet": ("cabinet", "closet", "cupboard", "wardrobe"),
    "door": ("door", "doorway", "gate"),
    "window": ("window",), "mirror": ("mirror",), "pillow": ("pillow", "cushion"),
    "blanket": ("blanket", "quilt", "duvet"), "towel": ("towel",), "broom": ("broom", "mop"),
    "box": ("box", "package", "carton", "crate"), "shelf": ("shelf", "bookshelf", "rack"),
    "picture": ("picture", "photo", "photograph", "painting", "poster"),
    "camera": ("camera", "camcorder"), "vacuum": ("vacuum", "vacuum cleaner", "hoover"),
    "light": ("light", "lamp"), "medicine": ("medicine", "pill", "pills"),
    "skateboard": ("skateboard",), "surfboard": ("surfboard",), "frisbee": ("frisbee",),
    "kite": ("kite",), "umbrella": ("umbrella",), "knife": ("knife",), "scissors": ("scissors",),
    "guitar": ("guitar",), "tennis racket": ("tennis racket", "racket", "racquet"),
    "keyboard": ("keyboard",), "remote": ("remote", "remote control"), "clock": ("clock", "watch"),
}


def _normalise(label: str) -> str:
    """Lower case, ``_`` as space (VidVRD's ``domestic_cat``), one space between words."""
    return " ".join(label.lower().replace("_", " ").split())


@lru_cache(maxsize=1)
def _index() -> dict[str, str]:
    index: dict[str, str] = {}
    for name, words in CLASSES.items():
        for word in (name, *words):
            index.setdefault(_normalise(word), name)
    return index


def concept(label: str) -> str | None:
    """The canonical class a label or caption noun names (``"puppy"`` -> ``"dog"``; ``"domestic_cat"`` ->
    ``"cat"``), or ``None`` when the lexicon does not know it.  Action Genome's ``a/b`` classes
    (``phone/camera``) name the first alternative the lexicon knows; a multi-word label falls back to its
    head (last) word (``"swimming pool"`` is unknown, ``"police officer"`` -> person)."""
    index = _index()
    for alternative in label.split("/"):
        text = _normalise(alternative)
        if not text:
            continue
        if text in index:
            return index[text]
        head = text.split()[-1]
        if head in index:
            return index[head]
    return None


def same_concept(a: str, b: str) -> bool:
    """Whether two labels name one class of the lexicon (unknown words name nothing)."""
    ca = concept(a)
    return ca is not None and ca == concept(b)
