"""Trains a tiny SR3 UNet for the data-parallel tests, as one process or as one rank of
torchrun (the Trainer reads RANK and WORLD_SIZE through ``runtime_from_config``):

    python tests/ddp_training_run.py OUT STEPS ACCUMULATION
    torchrun --standalone --nproc_per_node 2 tests/ddp_training_run.py OUT STEPS ACCUMULATION

Rank 0 writes OUT/result.pt (the loss history and the final weights); the checkpoint is
OUT/checkpoint.pt, so a second call with more steps resumes from it."""

import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sr3.data import PatchSampler  # noqa: E402
from sr3.method import training_loss  # noqa: E402
from sr3.training import Trainer  # noqa: E402
from sr3.unet import UNet  # noqa: E402
from sr3bench.core.runtime import runtime_from_config  # noqa: E402

GLOBAL_BATCH = 4
DIFFUSION = {
    "training_schedule": {"steps": 100, "beta_start": 1e-4, "beta_end": 0.05},
    "loss": "l1",
    "parametrization": "v",
}


def main(out: Path, steps: int, accumulation: int) -> None:
    generator = torch.Generator().manual_seed(0)
    hr = torch.nn.functional.interpolate(
        torch.rand(6, 3, 4, 4, generator=generator) * 2 - 1, size=16, mode="bilinear", align_corners=False
    )
    upsampled = torch.nn.functional.avg_pool2d(hr, 4).repeat_interleave(4, -1).repeat_interleave(4, -2)
    settings = {
        "steps": steps,
        "batch_size": GLOBAL_BATCH,
        "gradient_accumulation": accumulation,
        "patch_size": 16,
        "learning_rate": 1e-3,
        "warmup_steps": 0,
        "ema_decay": 0.9,
        "checkpoint_every": 3,
        "log_every": 1,
        "keep": "last",
    }
    torch.manual_seed(0)
    model = UNet(6, 3, 8, (1, 2), 1, (8,), 0.0, 16)
    runtime = runtime_from_config({"device": "cpu", "precision": "fp32"})
    trainer = Trainer(
        model,
        training_loss({"diffusion": DIFFUSION}),
        PatchSampler(list(zip(upsampled, hr)), 16, GLOBAL_BATCH, 0),
        settings,
        0,
        out / "checkpoint.pt",
        "ddp-test",
        runtime,
    )
    history = trainer.run()
    if runtime.writes_files:
        torch.save(
            {
                "losses": history,
                "weights": trainer.model.state_dict(),
                "ema": trainer.ema_model.state_dict(),
                "world_size": runtime.world_size,
            },
            out / "result.pt",
        )


if __name__ == "__main__":
    torch.set_num_threads(1)  # two ranks on two cores
    main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
