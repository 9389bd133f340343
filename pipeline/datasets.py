"""The registered datasets: where each comes from, how it is checked and how it is laid out
under ``downloads/<name>/`` for the prepare stage (``pipeline/stages/download.py`` runs it).

Every dataset can come from a local folder or archive instead of its publisher
(``datasets.<name>.local`` in params.yaml) or from a mirror (``datasets.<name>.mirror``, a
base URL to which the file names are appended): that is how an air-gapped cluster runs.
Checksums are the publishers' (EDSR's benchmark.tar, the DIV2K zips, NVlabs'
``download_ffhq.py`` metadata, ImageNet's archives), checked before a file counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RemoteFile:
    name: str  # the file name, also what a mirror or a local folder holds
    url: str
    md5: str
    size: int | None = None


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    title: str
    licence: str
    access: str  # "download" (fetched when no local copy is given) or "manual"
    files: tuple[RemoteFile, ...]
    arrangement: str  # how the files become downloads/<name>/ (pipeline/stages/download.py)
    layout: str  # what downloads/<name>/ holds afterwards
    how_to_get: str = ""
    options: dict = field(default_factory=dict)


EDSR = "https://cv.snu.ac.kr/research/EDSR/"
DIV2K = "http://data.vision.ee.ethz.ch/cvl/DIV2K/"
FFHQ_METADATA = RemoteFile(
    "ffhq-dataset-v2.json",
    "https://drive.google.com/uc?id=16N0RV4fHI6joBuKbQAoG34V_cQk7vxSA",
    "425ae20f06a4da1d4dc0f46d40ba5fd6",
    267_793_842,
)

ENTRIES = (
    DatasetEntry(
        name="sr_benchmarks",
        title="Set5, Set14, BSD100, Urban100 (EDSR's benchmark.tar)",
        licence="research benchmarks; each set's own terms",
        access="download",
        files=(RemoteFile("benchmark.tar", EDSR + "benchmark.tar", "4ace41d33c2384b97e6b320cd0afd6ba"),),
        arrangement="sr_sets",
        layout="<set>/HR/<stem>.png and <set>/LR_bicubic_x4/<stem>.png for Set5, Set14, B100, Urban100",
        options={"sets": ("Set5", "Set14", "B100", "Urban100"), "scale": 4},
    ),
    DatasetEntry(
        name="div2k",
        title="DIV2K train and validation, HR and bicubic x4 LR (ETH Zurich)",
        licence="academic research only (DIV2K terms)",
        access="download",
        files=(
            RemoteFile(
                "DIV2K_train_HR.zip", DIV2K + "DIV2K_train_HR.zip", "bdc2d9338d4e574fe81bf7d158758658", 3_530_603_713
            ),
            RemoteFile("DIV2K_valid_HR.zip", DIV2K + "DIV2K_valid_HR.zip", "9fcdda83005c5e5997799b69f955ff88"),
            RemoteFile(
                "DIV2K_train_LR_bicubic_X4.zip",
                DIV2K + "DIV2K_train_LR_bicubic_X4.zip",
                "76c43ec4155851901ebbe8339846d93d",
            ),
            RemoteFile(
                "DIV2K_valid_LR_bicubic_X4.zip",
                DIV2K + "DIV2K_valid_LR_bicubic_X4.zip",
                "21962de700c8d368c6ff83314480eff0",
            ),
        ),
        arrangement="sr_sets",
        layout="DIV2K_train/ and DIV2K_valid/, each with HR/ and LR_bicubic_x4/ (same file names)",
        options={"sets": ("DIV2K_train", "DIV2K_valid"), "scale": 4},
    ),
    DatasetEntry(
        name="ffhq",
        title="FFHQ 128x128 thumbnails (NVlabs), 70,000 aligned faces",
        licence="CC BY-NC-SA 4.0 (the dataset); each photo under its Flickr licence",
        access="download",
        files=(FFHQ_METADATA,),
        arrangement="ffhq",
        layout="<id>.png, in train/ for images 0-59,999 and in val/ for 60,000-69,999",
        how_to_get="every image's URL and md5 come from the metadata JSON of NVlabs/ffhq-dataset download_ffhq.py; "
        "a local copy is the thumbnails128x128 folder (its 00000/ ... 69000/ sub-folders), "
        "with ffhq-dataset-v2.json beside "
        "the images to have each one checked",
        options={"kind": "thumbnail", "train": (0, 60_000), "val": (60_000, 70_000)},
    ),
    DatasetEntry(  # the faces cascade's (faces64_256, faces256_1024): HR sizes above the thumbnails' 128
        name="ffhq1024",
        title="FFHQ 1024x1024 images (NVlabs), 70,000 aligned faces (89 GB)",
        licence="CC BY-NC-SA 4.0 (the dataset); each photo under its Flickr licence",
        access="download",
        files=(FFHQ_METADATA,),
        arrangement="ffhq",
        layout="<id>.png (1024x1024), in train/ for images 0-59,999 and in val/ for 60,000-69,999",
        how_to_get="every image's URL and md5 come from the metadata JSON of NVlabs/ffhq-dataset download_ffhq.py "
        "(its 'image' entries); a local copy is the images1024x1024 folder (its 00000/ ... 69000/ sub-folders), "
        "with ffhq-dataset-v2.json beside the images to have each one checked",
        options={"kind": "image", "train": (0, 60_000), "val": (60_000, 70_000)},
    ),
    DatasetEntry(
        name="celebahq",
        title="CelebA-HQ, 30,000 aligned faces (Karras et al. 2018)",
        licence="CelebA terms: non-commercial research only; not redistributable",
        access="manual",
        files=(),
        arrangement="image_folder",
        layout="<CelebA id>.jpg|png, 256x256 or 1024x1024 (any square size of at least hr_size)",
        how_to_get="CelebA-HQ is built from CelebA plus the deltas of progressive_growing_of_gans (its dataset_tool.py "
        "create_celebahq), or taken from CelebAMask-HQ's CelebA-HQ-img folder (30,000 JPEGs at 1024). Put the images, "
        "one folder, no sub-folders, anywhere and set datasets.celebahq.local in params.yaml to that folder",
    ),
    DatasetEntry(
        name="imagenet",
        title="ImageNet ILSVRC2012 train (1.28M) and validation (50,000) images",
        licence="ImageNet terms of access: non-commercial research and education; registration required",
        access="manual",
        files=(
            RemoteFile(
                "ILSVRC2012_img_train.tar",
                "https://image-net.org/data/ILSVRC/2012/ILSVRC2012_img_train.tar",
                "1d675b47d978889d74fa0da5fadfb00e",
            ),
            RemoteFile(
                "ILSVRC2012_img_val.tar",
                "https://image-net.org/data/ILSVRC/2012/ILSVRC2012_img_val.tar",
                "29b22e2961454d5413ddabcf34fc5622",
            ),
        ),
        arrangement="imagenet",
        layout="<wnid>/<image>.JPEG under train/, <image>.JPEG under val/",
        how_to_get="log in at https://image-net.org, "
        "download ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar into one "
        "folder (or extract them there as train/<wnid>/*.JPEG and val/*.JPEG) and set datasets.imagenet.local in "
        "params.yaml to that folder",
    ),
    DatasetEntry(  # the validation labels of the classify stage (the paper's Table 3)
        name="imagenet_devkit",
        title="ILSVRC2012 development kit (Task 1 & 2): the validation images' labels and the class metadata",
        licence="ImageNet terms of access: non-commercial research and education",
        access="download",
        files=(
            RemoteFile(
                "ILSVRC2012_devkit_t12.tar.gz",
                "https://image-net.org/data/ILSVRC/2012/ILSVRC2012_devkit_t12.tar.gz",
                "fa75699e90414af021442c21a62c3abe",
            ),
        ),
        arrangement="imagenet_devkit",
        layout="ILSVRC2012_validation_ground_truth.txt and meta.mat (the devkit's data/ folder)",
        how_to_get="if image-net.org asks for a login, log in there, download ILSVRC2012_devkit_t12.tar.gz and set "
        "datasets.imagenet_devkit.local in params.yaml to it (or to its folder, or to the extracted "
        "ILSVRC2012_devkit_t12 folder)",
        options={"files": ("ILSVRC2012_validation_ground_truth.txt", "meta.mat")},  # pipeline/imagenet_devkit.py's
    ),
)

REGISTRY = {entry.name: entry for entry in ENTRIES}


class UnknownDatasetError(ValueError):
    def __str__(self) -> str:
        return self.args[0]


def entry(name: str) -> DatasetEntry:
    if name not in REGISTRY:
        raise UnknownDatasetError(f"unknown dataset {name!r}; registered: {', '.join(REGISTRY)}")
    return REGISTRY[name]
