"""`scene-r1 train-nano`: scene-r1-nano, a small Qwen2.5-VL-architecture model trained from scratch
on synthetic rooms by our own pipeline (SFT warm start, then GRPO), with the generic `train`.

The recipe is fixed (seeds, sizes, steps) so the same command gives the same model. The three
tasks are trained in rounds (temporal, image, vqa, temporal, ...) from one model, each round a
`train()` run continuing from the last, which keeps every task alive in the one small model.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..synth import SynthConfig, write_synthetic
from .records import RecordSettings, records
from .train import TrainSettings, train

TASKS = ("temporal", "image", "vqa")


@dataclass(frozen=True)
class NanoRecipe:
    train_seeds: tuple[int, int] = (1000, 1040)  # range of synthetic room seeds for training
    held_out_seeds: tuple[int, int] = (5000, 5006)  # never used in training
    frames: int = 16
    width: int = 112
    height: int = 84
    hidden: int = 192
    layers: int = 4
    vision_hidden: int = 96
    vision_depth: int = 4
    vocab_size: int = 1024
    rounds: int = 3
    sft_steps: int = 300  # per task and round
    grpo_steps: int = 40  # per task, in the last round
    sft_learning_rate: float = 1e-3
    grpo_learning_rate: float = 2e-5
    batch_size: int = 4
    num_generations: int = 4
    max_completion_length: int = 48
    seed: int = 0


def make_data(folder: Path, seeds: tuple[int, int], recipe: NanoRecipe) -> Path:
    for seed in range(*seeds):
        target = folder / f"room-{seed}"
        if not (target / "gt.json").exists():
            write_synthetic(SynthConfig(seed=seed, frames=recipe.frames, width=recipe.width, height=recipe.height), target)
    return folder


def train_nano(out, recipe: NanoRecipe = NanoRecipe(), log=print) -> Path:
    """The whole recipe; returns OUT/final (the SFT-only model stays in OUT/sft-final for comparison)."""
    from ..models.tiny import make_tiny_qwen2_5_vl

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "recipe.json").write_text(json.dumps(asdict(recipe), indent=1), encoding="utf-8")
    started = time.perf_counter()
    data = make_data(out / "data" / "train", recipe.train_seeds, recipe)
    make_data(out / "data" / "held-out", recipe.held_out_seeds, recipe)
    log(f"[nano] data ready in {time.perf_counter() - started:.0f} s")
    settings = RecordSettings(video_frames=8)
    corpus = [r["solution"] + " " + r["prompt"][0]["content"][-1]["text"] for task in TASKS for r in records(data, task, settings)]
    base = out / "init"
    if not (base / "config.json").exists():
        make_tiny_qwen2_5_vl(base, hidden=recipe.hidden, layers=recipe.layers, vision_hidden=recipe.vision_hidden, vision_depth=recipe.vision_depth,
                             vocab_size=recipe.vocab_size, corpus=corpus, seed=recipe.seed)
    model = str(base)
    common = dict(data=str(data), batch_size=recipe.batch_size, num_generations=recipe.num_generations, use_cpu=True, seed=recipe.seed,
                  max_completion_length=recipe.max_completion_length, records=settings, save_steps=10_000)
    for round_number in range(recipe.rounds):
        for task in TASKS:
            run = out / "runs" / f"sft-{round_number}-{task}"
            if not (run / "sft" / "final" / "config.json").exists():
                train(TrainSettings(task=task, model=model, out=str(run), sft_steps=recipe.sft_steps, grpo_steps=0,
                                    sft_learning_rate=recipe.sft_learning_rate, **common))
            model = str(run / "sft" / "final")
            log(f"[nano] SFT round {round_number + 1} {task}: {time.perf_counter() - started:.0f} s")
    sft_final = out / "sft-final"
    _copy_model(Path(model), sft_final)
    for task in TASKS:
        run = out / "runs" / f"grpo-{task}"
        if not (run / "final" / "config.json").exists():
            train(TrainSettings(task=task, model=model, out=str(run), grpo_steps=recipe.grpo_steps, learning_rate=recipe.grpo_learning_rate, **common))
        model = str(run / "final")
        log(f"[nano] GRPO {task}: {time.perf_counter() - started:.0f} s")
    final = out / "final"
    _copy_model(Path(model), final)
    (out / "timing.json").write_text(json.dumps({"seconds": time.perf_counter() - started}), encoding="utf-8")
    return final


def _copy_model(source: Path, target: Path) -> None:
    import shutil

    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("checkpoint-*", "*.pt", "training_args.bin"))
    # How the model is to be asked: as it was trained (see reasoner.with_model_hints).
    (target / "scene_r1.json").write_text(json.dumps({"video_as_images": True, "video_frames": 8}), encoding="utf-8")
