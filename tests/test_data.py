"""Training data read from disk by index, and the trainer's device and rank seams
(precision, layout and data-parallel training: test_runtime.py, test_distributed.py)."""

import json

import numpy as np
import pytest
import torch

from sr3.data import PairDataset, PatchSampler
from sr3.training import Trainer
from sr3bench.core.images import to_tensor
from sr3bench.core.resize import downsample, upsample
from sr3bench.core.runtime import Runtime, RuntimeSettingError, runtime_from_config
from sr3bench.core.shards import DamagedShardError, ShardReader, ShardWriter
from sr3bench.core.stage_files import StageFileError

RUNTIME = {"device": "cpu", "precision": "fp32"}


PAIRS = [(hr, downsample(hr, 4)) for hr in np.random.default_rng(0).integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)]


@pytest.fixture
def split(tmp_path):
    writer = ShardWriter(tmp_path / "shards", items_per_shard=2)  # three shards, the last one short
    for index, (hr, lr) in enumerate(PAIRS):
        writer.add(f"{index}.png", hr, lr)
    writer.close()
    return tmp_path / "shards"


def test_pairs_are_read_from_shards_as_the_in_memory_tensors_were(split):
    dataset = PairDataset(split, 4)
    assert len(dataset) == 5 and dataset.image_size == (16, 16) and len(list(split.glob("shard-*.tar"))) == 3
    hr, lr = PAIRS[3]
    upsampled, target = dataset[3]
    assert torch.equal(target, to_tensor([hr])[0]) and torch.equal(upsampled, to_tensor([upsample(lr, 4)])[0])


def test_patches_from_disk_equal_patches_from_memory(split):
    dataset = PairDataset(split, 4)
    in_memory = [dataset[i] for i in range(len(dataset))]
    from_disk, from_memory = PatchSampler(dataset, 8, 4, seed=3), PatchSampler(in_memory, 8, 4, seed=3)
    for _ in range(3):
        assert all(torch.equal(a, b) for a, b in zip(from_disk(), from_memory()))


def test_an_unprepared_split_is_named(tmp_path):
    with pytest.raises(StageFileError, match="index.json not found.*run the prepare stage"):
        PairDataset(tmp_path / "shards", 4)


@pytest.mark.fault
def test_a_damaged_item_is_an_error_naming_it_never_another_image(split):
    index = json.loads((split / "index.json").read_text())["items"]
    item = index[3]
    with open(split / item["shard"], "r+b") as shard:  # flip one byte inside item 3's HR PNG
        shard.seek(item["hr"]["offset"] + item["hr"]["size"] // 2)
        byte = shard.read(1)
        shard.seek(-1, 1)
        shard.write(bytes([byte[0] ^ 0xFF]))
    reader = ShardReader(split)
    assert np.array_equal(reader[2][0], PAIRS[2][0])  # the shard's other item is intact
    with pytest.raises(
        DamagedShardError,
        match=r"item '3.png' \(hr\) in .*shard-00001.tar does not match the sha256.*re-run the prepare stage",
    ):
        reader[3]


def test_cuda_without_a_gpu_is_refused_and_auto_falls_back_to_the_cpu():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(RuntimeSettingError, match="torch sees no CUDA device"):
        runtime_from_config(dict(RUNTIME, device="cuda"), {})
    assert runtime_from_config(dict(RUNTIME, device="auto"), {}).device == torch.device("cpu")


def test_only_rank_zero_writes_checkpoints(split, tmp_path, monkeypatch):
    """Each rank of two run alone (no process group: the gradient averaging is
    test_distributed.py's): only rank 0 leaves a checkpoint."""
    from sr3.unet import UNet
    from sr3bench.core import distributed

    monkeypatch.setattr(distributed, "start", lambda runtime: None)
    monkeypatch.setattr(distributed, "wrap", lambda model, runtime: model)
    monkeypatch.setattr(distributed, "over_ranks", lambda loss, stopping, runtime: (loss, stopping))

    settings = {
        "steps": 2,
        "batch_size": 4,
        "patch_size": 8,
        "learning_rate": 1e-3,
        "warmup_steps": 0,
        "ema_decay": 0.9,
        "checkpoint_every": 1,
        "log_every": 1,
        "keep": "last",
    }
    sampler = PatchSampler(PairDataset(split, 4), 8, 4, seed=0)

    def loss(model, upsampled_lr, hr, generator, **_):
        return (model(upsampled_lr) - hr).pow(2).mean()

    for rank in (1, 0):
        model = UNet(3, 3, 8, (1,), 1, (), 0.0, 8, noise_conditioned=False)
        Trainer(
            model,
            loss,
            sampler,
            settings,
            0,
            tmp_path / f"rank{rank}.pt",
            "seams",
            Runtime(torch.device("cpu"), rank=rank, world_size=2),
        ).run()
    assert not (tmp_path / "rank1.pt").exists() and (tmp_path / "rank0.pt").exists()


def test_the_cache_holds_what_fits_and_the_rest_is_read_again(split):
    dataset = PairDataset(split, 4, cache_bytes=2 * 2 * 3 * 16 * 16 * 4)  # room for two pairs
    first = [dataset[i] for i in range(5)]
    assert sorted(dataset.cache) == [0, 1]
    assert all(torch.equal(a, b) for i in range(5) for a, b in zip(first[i], dataset[i]))
