"""The SR3 paper's published numbers (Saharia et al. 2021, arXiv 2104.07636), which the
report puts beside the reproduced ones. Transcribed from ../shared/data/README.md."""

TABLE_1_FACES = {
    "title": "Table 1: faces 16x16 -> 128x128 (FFHQ train, CelebA-HQ eval)",
    "columns": ["psnr", "ssim", "consistency"],
    "rows": {
        "PULSE": {"psnr": 16.88, "ssim": 0.44, "consistency": 161.1},
        "FSRGAN": {"psnr": 23.01, "ssim": 0.62, "consistency": 33.8},
        "regression": {"psnr": 23.96, "ssim": 0.69, "consistency": 2.71},
        "sr3": {"psnr": 23.04, "ssim": 0.65, "consistency": 2.68},
    },
}

TABLE_2_IMAGENET = {
    "title": "Table 2: natural images 64x64 -> 256x256 (ImageNet)",
    "columns": ["fid", "is", "psnr", "ssim", "consistency"],
    "rows": {
        "reference (real HR)": {"fid": 1.9, "is": 240.8},
        "regression": {"fid": 15.2, "is": 121.1, "psnr": 27.9, "ssim": 0.801, "consistency": 0.15},
        "sr3": {"fid": 5.2, "is": 180.1, "psnr": 26.4, "ssim": 0.762, "consistency": 0.14},
    },
}

# Bicubic x4, Y channel, border 4 (EDSR, Lim et al. 2017; RCAN, Zhang et al. 2018).
BICUBIC_X4_BENCHMARKS = {
    "title": "Published bicubic x4 (Y channel, border 4; EDSR/RCAN papers)",
    "columns": ["psnr", "ssim"],
    "rows": {"bicubic on Set5": {"psnr": 28.42, "ssim": 0.8104}, "bicubic on Set14": {"psnr": 26.00, "ssim": 0.7027}},
}

ALL_TABLES = (TABLE_1_FACES, TABLE_2_IMAGENET, BICUBIC_X4_BENCHMARKS)
