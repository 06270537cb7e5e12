"""Image-folder datasets: CINIC-10 and Restricted ImageNet, resized to 32x32 RGB in [0, 1]."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import BadInput
from . import Dataset

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}
CINIC10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
# Restricted ImageNet (Tsipras et al. 2018): 9 super-classes, each a range of ImageNet class indices (indices into
# the sorted list of the 1000 ILSVRC-2012 synset ids), both ends inclusive, in the order of the label index. These
# are RESTRICTED_IMAGNET_RANGES of the robustness library (robustness/tools/constants.py, version 1.2.1).
RESTRICTED_IMAGENET_RANGES = {
    "dog": (151, 268), "cat": (281, 285), "frog": (30, 32), "turtle": (33, 37), "bird": (80, 100),
    "primate": (365, 382), "fish": (389, 397), "crab": (118, 121), "insect": (300, 319),
}
# The WordNet ids (synset folder names) of those ranges, read off the sorted ILSVRC-2012 synset list (as shipped in
# timm 1.0's data/_info/imagenet_synsets.txt), so that folders map by name, never by their position in a listing.
RESTRICTED_IMAGENET_SYNSETS = {name: tuple(ids.split()) for name, ids in {
    "dog": """n02085620 n02085782 n02085936 n02086079 n02086240 n02086646 n02086910 n02087046 n02087394 n02088094
        n02088238 n02088364 n02088466 n02088632 n02089078 n02089867 n02089973 n02090379 n02090622 n02090721
        n02091032 n02091134 n02091244 n02091467 n02091635 n02091831 n02092002 n02092339 n02093256 n02093428
        n02093647 n02093754 n02093859 n02093991 n02094114 n02094258 n02094433 n02095314 n02095570 n02095889
        n02096051 n02096177 n02096294 n02096437 n02096585 n02097047 n02097130 n02097209 n02097298 n02097474
        n02097658 n02098105 n02098286 n02098413 n02099267 n02099429 n02099601 n02099712 n02099849 n02100236
        n02100583 n02100735 n02100877 n02101006 n02101388 n02101556 n02102040 n02102177 n02102318 n02102480
        n02102973 n02104029 n02104365 n02105056 n02105162 n02105251 n02105412 n02105505 n02105641 n02105855
        n02106030 n02106166 n02106382 n02106550 n02106662 n02107142 n02107312 n02107574 n02107683 n02107908
        n02108000 n02108089 n02108422 n02108551 n02108915 n02109047 n02109525 n02109961 n02110063 n02110185
        n02110341 n02110627 n02110806 n02110958 n02111129 n02111277 n02111500 n02111889 n02112018 n02112137
        n02112350 n02112706 n02113023 n02113186 n02113624 n02113712 n02113799 n02113978""",
    "cat": """n02123045 n02123159 n02123394 n02123597 n02124075""",
    "frog": """n01641577 n01644373 n01644900""",
    "turtle": """n01664065 n01665541 n01667114 n01667778 n01669191""",
    "bird": """n01795545 n01796340 n01797886 n01798484 n01806143 n01806567 n01807496 n01817953 n01818515 n01819313
        n01820546 n01824575 n01828970 n01829413 n01833805 n01843065 n01843383 n01847000 n01855032 n01855672
        n01860187""",
    "primate": """n02480495 n02480855 n02481823 n02483362 n02483708 n02484975 n02486261 n02486410 n02487347 n02488291
        n02488702 n02489166 n02490219 n02492035 n02492660 n02493509 n02493793 n02494079""",
    "fish": """n02514041 n02526121 n02536864 n02606052 n02607072 n02640242 n02641379 n02643566 n02655020""",
    "crab": """n01978287 n01978455 n01980166 n01981276""",
    "insect": """n02165105 n02165456 n02167151 n02168699 n02169497 n02172182 n02174001 n02177972 n02190166 n02206856
        n02219486 n02226429 n02229544 n02231487 n02233338 n02236044 n02256656 n02259212 n02264363 n02268443""",
}.items()}


def read_image(path: Path, size: int = 32) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            if img.size != (size, size):
                img = img.resize((size, size), Image.BILINEAR)
            return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)
    except (UnidentifiedImageError, OSError) as exc:
        raise BadInput(f"cannot read image {path}: {exc}") from None


def read_folders(folders: list[tuple[Path, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Images of every (folder, label) pair, files in sorted order."""
    images, labels = [], []
    for folder, label in folders:
        for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            images.append(read_image(path))
            labels.append(label)
    if not images:
        raise BadInput(f"no images found under {folders[0][0].parent}")
    x = torch.from_numpy(np.stack(images))  # uint8 pixels (data.as_inputs gives the inputs k/255)
    return x, torch.tensor(labels, dtype=torch.int64)


def _split_dir(root: Path, names: tuple[str, ...]) -> Path:
    for name in names:
        if (root / name).is_dir():
            return root / name
    raise BadInput(f"{root} has no {' or '.join(n + '/' for n in names)} folder")


def cinic10(root: Path) -> Dataset:
    splits = []
    for names in (("train",), ("test",)):
        split = _split_dir(root, names)
        missing = [c for c in CINIC10_CLASSES if not (split / c).is_dir()]
        if missing:
            raise BadInput(f"{split} lacks the class folders {', '.join(missing)}")
        splits.append(read_folders([(split / c, i) for i, c in enumerate(CINIC10_CLASSES)]))
    (x_train, y_train), (x_test, y_test) = splits
    return Dataset("cinic10", x_train, y_train, x_test, y_test, 10, "image", crop_padding=4, flip=True)


def restricted_imagenet_folders(split: Path) -> list[tuple[Path, int]]:
    """(folder, super-class) pairs: the 9 super-class folders, or the ImageNet synset folders named by WordNet id
    (all 1000, or only the 203 of the super-classes; other folders are ignored). Every one of the 203 must be there."""
    supers = list(RESTRICTED_IMAGENET_RANGES)
    if all((split / s).is_dir() for s in supers):
        return [(split / s, i) for i, s in enumerate(supers)]
    present = {p.name for p in split.iterdir() if p.is_dir()}
    wanted = [(wnid, label) for label, s in enumerate(supers) for wnid in RESTRICTED_IMAGENET_SYNSETS[s]]
    missing = [wnid for wnid, _ in wanted if wnid not in present]
    if len(missing) == len(wanted) and present & set(supers):
        raise BadInput(f"{split} lacks the super-class folders {', '.join(s for s in supers if s not in present)}")
    if len(missing) == len(wanted):
        raise BadInput(f"{split} must hold the 9 super-class folders ({', '.join(supers)}) or the ImageNet synset "
                       f"folders named by WordNet id (e.g. {wanted[0][0]}); found neither")
    if missing:
        raise BadInput(f"{split} lacks {len(missing)} of the {len(wanted)} Restricted ImageNet synset folders: "
                       f"{', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}")
    return [(split / wnid, label) for wnid, label in wanted]


def restricted_imagenet(root: Path) -> Dataset:
    (x_train, y_train), (x_test, y_test) = (
        read_folders(restricted_imagenet_folders(_split_dir(root, names))) for names in (("train",), ("val", "test")))
    return Dataset("restricted-imagenet", x_train, y_train, x_test, y_test, 9, "image", crop_padding=4, flip=True)
