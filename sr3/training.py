"""The training loop shared by SR3 and the regression baseline: Adam, EMA weights,
atomic checkpoints with everything needed to resume bit-for-bit, and a loss log."""

from __future__ import annotations

import contextlib
import copy
import csv
import logging
import math
import signal
from pathlib import Path
from typing import Callable

import torch

from sr3.data import PatchSampler, Prefetcher
from sr3bench.core import distributed
from sr3bench.core.atomic import atomic_path
from sr3bench.core.machine import cpu_name
from sr3bench.core.progress import progress
from sr3bench.core.runtime import Runtime

log = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """Training produced NaN or inf; the last good checkpoint is kept."""


class CheckpointError(RuntimeError):
    """A checkpoint exists but cannot be read; it is left in place for the user to decide."""


def update_ema(ema_model: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    with torch.no_grad():
        for ema_param, param in zip(ema_model.parameters(), model.parameters()):
            ema_param.mul_(decay).add_(param, alpha=1 - decay)


def linear_warmup(warmup_steps: int) -> Callable[[int], float]:
    """Learning-rate factor: rises linearly to 1 over ``warmup_steps`` steps, then stays 1."""
    return lambda step: min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0


def save_checkpoint(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        torch.save(state, temporary)


class Trainer:
    """Runs ``steps`` optimisation steps of ``loss_fn(model, upsampled_lr, hr, generator,
    rows=, batch_size=)``.

    ``checkpoint_path`` lives outside the stage's declared outputs, so that neither
    Snakemake nor DVC deletes it when a run fails; a re-run resumes from it.
    Randomness comes from explicit generators (the sampler's for the data order, the
    trainer's for the noise, both seeded from ``seed``); ``runtime`` says where the model
    computes, in which precision, and which process writes (rank 0).

    ``settings["batch_size"]`` is the global batch (the paper's 256): under torchrun each
    of the ``world_size`` ranks computes its share, in ``gradient_accumulation``
    micro-batches, and every rank resumes from the same checkpoint.

    With ``validate`` (a function of the EMA model giving its validation PSNR) and
    ``settings["keep"] == "best_val_psnr"``, the EMA weights are scored every
    ``validate_every`` steps and at the end; ``final_model`` then has the best-scoring
    ones (the regression baseline's selection, SR3 Sec. 4).
    """

    def __init__(
        self,
        model,
        loss_fn: Callable,
        sampler: PatchSampler,
        settings: dict,
        seed: int,
        checkpoint_path: Path,
        fingerprint: str,
        runtime: Runtime | None = None,
        validate: Callable | None = None,
    ):
        self.runtime = runtime or Runtime(torch.device("cpu"))
        distributed.start(self.runtime)
        self.model, self.loss_fn, self.sampler, self.settings = (
            self.runtime.prepare_model(model),
            loss_fn,
            sampler,
            settings,
        )
        self.ema_model = copy.deepcopy(self.model).requires_grad_(False)
        self.network = distributed.wrap(self.model, self.runtime)  # what the loss calls: DDP on several ranks
        self.micro_batches = distributed.rows_of_rank(
            settings["batch_size"], self.runtime, settings.get("gradient_accumulation", 1)
        )
        self.rank_rows = slice(self.micro_batches[0].start, self.micro_batches[-1].stop)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=settings["learning_rate"])
        self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, linear_warmup(settings["warmup_steps"]))
        self.grad_scaler = torch.amp.GradScaler(self.runtime.device.type, enabled=self.runtime.precision == "fp16")
        self.noise_generator = torch.Generator().manual_seed(seed + 1)
        self.checkpoint_path, self.fingerprint = Path(checkpoint_path), fingerprint
        self.step, self.loss_history, self.validation_history = 0, [], []  # [(step, loss)], [(step, PSNR)]
        self.threads_from_step = []  # [(first step, torch threads)]: a resume with other threads adds one
        self.precision_from_step = []  # [(first step, precision)]: a resume in another precision adds one
        self.validate = validate if settings["keep"] == "best_val_psnr" else None
        if settings["keep"] == "best_val_psnr" and validate is None:
            raise ValueError("training.keep is best_val_psnr but no validation split was given")
        self.best = None  # {"step", "psnr", "ema_model"} of the best validated weights
        self.running = (0.0, 0)  # loss sum and count since the last log line
        self.unread_losses = []  # the steps' losses on the device, read at the next log line or checkpoint
        self.sampler_state = None  # the data order after the last batch used
        self._stop_signal = None

    def state(self) -> dict:
        return {
            "fingerprint": self.fingerprint,
            "step": self.step,
            "steps": self.settings["steps"],  # the run's length: a checkpoint at it ended its run
            "model": self.model.state_dict(),
            "ema_model": self.ema_model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "lr_scheduler": self.lr_scheduler.state_dict(),
            "noise_generator": self.noise_generator.get_state(),
            "sampler": self.sampler_state or self.sampler.state_dict(),
            "grad_scaler": self.grad_scaler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(self.runtime.device) if self.runtime.device.type == "cuda" else None,
            "loss_history": self.loss_history,
            "validation_history": self.validation_history,
            "threads_from_step": self.threads_from_step,
            "precision_from_step": self.precision_from_step,
            "running": self.running,
            "best": self.best,
        }

    def resume(self) -> bool:
        """Continue from a checkpoint of this run (``fingerprint``): ``last.pt``, or the
        furthest one set aside earlier (``last.<fingerprint>.step<N>.pt``). The fingerprint
        leaves out the step count, so raising ``steps`` continues a finished run, where that
        gives what an uninterrupted longer run gives (``why_not_continued``). Any other ``last.pt``
        is set aside under its own fingerprint and step, never continued or overwritten."""
        current = self._read_checkpoint(self.checkpoint_path) if self.checkpoint_path.exists() else None
        why_not = self.why_not_continued(current) if current is not None else None
        path, state = (self.checkpoint_path, current) if current is not None and why_not is None else (None, None)
        for step, candidate in sorted(self._set_aside_of_this_config(), reverse=True):
            if state is not None and state["step"] >= step:
                break
            read = self._read_checkpoint(candidate)
            if self.why_not_continued(read) is None:
                path, state = candidate, read
                break
        current = {k: current.get(k) for k in ("fingerprint", "step")} if current is not None else None
        distributed.barrier(self.runtime)  # every rank has read its checkpoint before rank 0 renames any
        if self.runtime.writes_files:
            if current is not None and path != self.checkpoint_path:
                kept = self._set_aside_name(current["fingerprint"], current["step"])
                self.checkpoint_path.rename(kept)
                log.warning(
                    "checkpoint %s %s; kept as %s",
                    self.checkpoint_path,
                    why_not or "is behind another of this run",
                    kept,
                )
            if path not in (None, self.checkpoint_path):
                path.rename(self.checkpoint_path)
                log.info("checkpoint %s of this run, set aside earlier, is %s again", path, self.checkpoint_path)
        if state is None:
            return False
        self.model.load_state_dict(state["model"])
        self.ema_model.load_state_dict(state["ema_model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.lr_scheduler.load_state_dict(state["lr_scheduler"])
        self.noise_generator.set_state(state["noise_generator"])
        self.sampler.load_state_dict(state["sampler"])
        torch.set_rng_state(state["torch_rng"])
        if state.get("grad_scaler"):
            self.grad_scaler.load_state_dict(state["grad_scaler"])
        if state.get("cuda_rng") is not None and self.runtime.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], self.runtime.device)
        self.step, self.loss_history, self.running = state["step"], state["loss_history"], tuple(state["running"])
        self.best = state.get("best")
        self.validation_history = state.get("validation_history", [])
        self.threads_from_step = [tuple(pair) for pair in state.get("threads_from_step", [])]
        self.precision_from_step = [tuple(pair) for pair in state.get("precision_from_step", [])]
        log.info("resumed from %s at step %d", self.checkpoint_path, self.step)
        return True

    def why_not_continued(self, state: dict) -> str | None:
        """Why this run cannot continue ``state`` (None: it can). A finished run continues
        to more steps only where its last step did nothing a longer run would not do there:
        the last step always logs (and validates, keeping the best weights), so it must lie
        on the ``log_every`` (and ``validate_every``) grid."""
        steps, step, ended = self.settings["steps"], state.get("step", 0), state.get("steps")
        if state.get("fingerprint") != self.fingerprint:
            return "was made with another config, other training code or other training images"
        if step > steps:
            return f"is at step {step}, past steps {steps}"
        grid = [self.settings["log_every"]] + ([self.settings["validate_every"]] if self.validate else [])
        if step == ended and step < steps and any(step % every for every in grid):
            return (
                f"ended its run at step {step}, off the log_every/validate_every grid ({', '.join(map(str, grid))}): "
                "its loss log and validation there differ from a longer run's, so training starts afresh"
            )
        return None

    def _set_aside_name(self, fingerprint, step) -> Path:
        return self.checkpoint_path.with_name(f"{self.checkpoint_path.stem}.{fingerprint}.step{step}.pt")

    def _set_aside_of_this_config(self) -> list[tuple[int, Path]]:
        """(step, path) of this config's set-aside checkpoints not past ``steps``, by name."""
        prefix = f"{self.checkpoint_path.stem}.{self.fingerprint}.step"
        found = []
        for path in self.checkpoint_path.parent.glob(f"{prefix}*.pt"):
            step = path.name[len(prefix) : -len(".pt")]
            if step.isdigit() and int(step) <= self.settings["steps"]:
                found.append((int(step), path))
        return found

    def _read_checkpoint(self, path: Path) -> dict:
        try:
            return torch.load(path, map_location="cpu", weights_only=False)  # states load onto the model's device
        except Exception as error:  # unpickling raises many types; all mean the same here
            reason = " ".join(str(error).splitlines()[:2])[:300]
            raise CheckpointError(
                f"checkpoint {path} cannot be read ({type(error).__name__}: {reason}). "
                "Checkpoints are written atomically, so it was damaged after writing (a copy, the disk): "
                "move it away (training then goes on without it), or put back a good copy to resume"
            ) from error

    def _on_signal(self, signum, frame):
        self._stop_signal = signum

    def run(self) -> list[tuple[int, float]]:
        settings = self.settings
        self.resume()
        self._note(self.threads_from_step, torch.get_num_threads(), "{} torch thread(s)")
        self._note(self.precision_from_step, self.runtime.precision, "{} precision")
        self.sampler_state = self.sampler.state_dict()
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        running, count = self.running
        try:
            with (
                self._batches() as next_batch,
                progress(
                    total=settings["steps"],
                    initial=self.step,
                    desc="train",
                    mininterval=2,
                    disable=not self.runtime.writes_files,
                ) as bar,
            ):
                while self.step < settings["steps"]:
                    local_loss = self._optimisation_step(*next_batch())
                    loss, stopping = distributed.over_ranks(local_loss, self._stop_signal is not None, self.runtime)
                    self.unread_losses.append(loss)
                    last = self.step == settings["steps"]
                    logging_now = self.step % settings["log_every"] == 0 or last
                    validating = self.validate and (self.step % settings["validate_every"] == 0 or last)
                    checkpointing = self.step % settings["checkpoint_every"] == 0 or stopping
                    if logging_now or validating or checkpointing:  # the only waits for the device
                        running, count = self._read_losses(running, count)
                        self.running = (running, count)
                    if logging_now:
                        self.loss_history.append((self.step, running / count))
                        if self.runtime.writes_files:
                            log.info("step %d loss %.5f", self.step, running / count)
                        bar.set_postfix(loss=f"{running / count:.4f}")
                        running, count = 0.0, 0
                        self.running = (running, count)
                    bar.update(1)
                    if validating and self.runtime.writes_files:
                        self.score_on_validation()
                    if checkpointing:
                        self.save_checkpoint()
                    if stopping:
                        raise KeyboardInterrupt(
                            f"stopped by signal {self._stop_signal or 'on another rank'} at step {self.step}; "
                            "checkpoint saved"
                        )
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        self.save_checkpoint()
        return self.loss_history

    @contextlib.contextmanager
    def _batches(self):
        """A function giving this rank's rows of the next global batch, read ahead by
        ``runtime.data_workers`` batches in a background thread when that is above 0."""
        pin = self.runtime.device.type == "cuda"
        if self.runtime.data_workers:
            with Prefetcher(self.sampler, self.rank_rows, self.runtime.data_workers, pin) as prefetcher:

                def next_batch():
                    batch, self.sampler_state = prefetcher.next()
                    return batch

                yield next_batch
        else:

            def next_batch():
                batch = self.sampler(self.rank_rows)
                self.sampler_state = self.sampler.state_dict()
                return tuple(t.pin_memory() for t in batch) if pin else batch

            yield next_batch

    def _read_losses(self, running: float, count: int) -> tuple[float, int]:
        """The loss sum and count with the unread steps' losses added (one wait for the
        device). A non-finite loss raises NonFiniteLossError naming its step; this runs
        before every checkpoint, so no checkpoint holds the weights it made."""
        values = torch.stack(self.unread_losses).tolist() if self.unread_losses else []
        first_step, self.unread_losses = self.step - len(values) + 1, []
        for offset, value in enumerate(values):
            if not math.isfinite(value):
                kept = (
                    f"the last good checkpoint ({self.checkpoint_path}) is kept"
                    if self.checkpoint_path.exists()
                    else "no checkpoint had been written yet "
                    f"(the first comes at step {self.settings['checkpoint_every']})"
                )
                raise NonFiniteLossError(
                    f"loss became {value} at step {first_step + offset}; {kept}: lower the learning rate and re-run"
                )
            running, count = running + value, count + 1
        return running, count

    def _optimisation_step(self, upsampled_lr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        """One step on the global batch: this rank's micro-batches, each a forward and a
        backward pass (gradients summed, synchronised over ranks at the last one), then
        Adam and EMA. Every micro-batch draws the whole batch's noise from the same
        generator state and keeps its rows, so the step equals one process's on the
        whole batch. Returns this rank's mean loss, a float64 tensor on the device: reading
        it would wait for the step, so the caller reads it only when it logs or checkpoints."""
        self.optimizer.zero_grad(set_to_none=True)
        start, offset = self.noise_generator.get_state(), self.rank_rows.start
        total = torch.zeros((), device=self.runtime.device)
        for k, rows in enumerate(self.micro_batches):
            self.noise_generator.set_state(start)
            local = slice(rows.start - offset, rows.stop - offset)
            inputs = (
                self.runtime.layout(t[local].to(self.runtime.device, non_blocking=True)) for t in (upsampled_lr, hr)
            )
            with distributed.without_gradient_sync(self.network, k < len(self.micro_batches) - 1):
                with self.runtime.autocast():
                    loss = self.loss_fn(
                        self.network, *inputs, self.noise_generator, rows=rows, batch_size=self.settings["batch_size"]
                    )
                self.grad_scaler.scale(loss / len(self.micro_batches)).backward()
            total += loss.detach().float()
        self.grad_scaler.step(self.optimizer)
        self.grad_scaler.update()
        self.lr_scheduler.step()
        update_ema(self.ema_model, self.model, self.settings["ema_decay"])
        self.step += 1
        return total.double() / len(self.micro_batches)

    def score_on_validation(self) -> None:
        was_training = self.ema_model.training
        psnr = float(self.validate(self.ema_model.eval()))
        self.ema_model.train(was_training)
        if self.runtime.writes_files:
            log.info("step %d validation PSNR %.3f dB", self.step, psnr)
        self.validation_history.append((self.step, psnr))
        if self.best is None or psnr > self.best["psnr"]:
            self.best = {"step": self.step, "psnr": psnr, "ema_model": copy.deepcopy(self.ema_model.state_dict())}

    def _note(self, segments: list, value, described: str) -> None:
        """Record ``value`` (the torch threads, the precision) for the steps from now on. A
        resume with another goes on, warns and adds a segment: another thread count rounds
        float sums differently, another precision computes otherwise, so the weights are
        then of both, and the model file says so."""
        if segments and segments[-1][1] == value:
            return
        if segments and self.runtime.writes_files:
            log.warning(
                "resuming at step %d with %s, where the steps before ran with %s: the weights will differ from "
                "a run with one (both are recorded)",
                self.step,
                described.format(value),
                described.format(segments[-1][1]),
            )
        segments.append((self.step, value))

    def provenance(self) -> dict:
        """How the weights were computed, for the model file: the bytes repeat only with all of it the same."""
        return {
            "torch_threads": [list(pair) for pair in self.threads_from_step],
            "processes": self.runtime.world_size,
            "device": self.runtime.device.type,
            "precision": self.runtime.precision,
            # only when a resume changed it: one precision throughout keeps the file's bytes those of an unbroken run
            **(
                {"precision_from_step": [list(pair) for pair in self.precision_from_step]}
                if len(self.precision_from_step) > 1
                else {}
            ),
            "precision_reason": self.runtime.precision_reason,  # what runtime.precision auto chose, and why
            "cpu": cpu_name(),
            "torch": str(torch.__version__),  # a TorchVersion would not load with weights_only
        }

    def final_model(self) -> torch.nn.Module:
        """The EMA weights to keep: the last ones, or the best on validation."""
        if self.best is not None and self.validate:
            self.ema_model.load_state_dict(self.best["ema_model"])
            log.info("kept the weights of step %d (validation PSNR %.3f dB)", self.best["step"], self.best["psnr"])
        return self.ema_model

    def save_checkpoint(self) -> None:
        if self.runtime.writes_files:
            save_checkpoint(self.checkpoint_path, self.state())


def threads_at(step: int, threads_from_step: list[tuple[int, int]]) -> int | str:
    """The torch threads that computed ``step`` (steps after a segment's first step are its)."""
    counts = [threads for first, threads in threads_from_step if first < step]
    return counts[-1] if counts else ""


def write_loss_csv(
    history: list[tuple[int, float]],
    path: Path,
    validation: list[tuple[int, float]] | None = None,
    threads_from_step: list[tuple[int, int]] | None = None,
) -> None:
    """step,loss rows; with a validation history, a val_psnr column too (empty at the
    steps where the model was not validated, and rows for validated steps with no loss);
    with ``threads_from_step``, a torch_threads column: the threads that computed the step."""
    losses, scores = dict(history), dict(validation or [])
    with atomic_path(path) as temporary, open(temporary, "w", newline="") as handle:
        writer = csv.writer(handle)
        header = ["step", "loss"] + (["val_psnr"] if scores else []) + (["torch_threads"] if threads_from_step else [])
        writer.writerow(header)
        for step in sorted(set(losses) | set(scores)):
            row = [step, losses.get(step, "")] + ([scores.get(step, "")] if scores else [])
            writer.writerow(row + ([threads_at(step, threads_from_step)] if threads_from_step else []))
