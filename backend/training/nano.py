"""`scene-r1 train-nano`: scene-r1-nano, a small Qwen2.5-VL-architecture model trained from scratch
on synthetic rooms by our own pipeline (SFT warm start, then GRPO), with the generic `train`.

The recipe is fixed (seeds, sizes, steps) so the same command gives the same model. The three
tasks are trained together (`task="all"`: their records interleaved, one SFT run, then one GRPO
run whose rewards each score their own task). Trained in turns instead, the small model forgot
each task during the next one: the image task's boxes were gone after the VQA turn.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..data.synth import SynthConfig, write_synthetic
from .records import TASKS, RecordSettings, records
from .train import TrainSettings, train


@dataclass(frozen=True)
class NanoRecipe:
    train_seeds: tuple[int, int] = (1000, 1400)  # range of synthetic room seeds for training (0.2 s a room)
    held_out_seeds: tuple[int, int] = (5000, 5006)  # never used in training
    frames: int = 16
    width: int = 112
    height: int = 84
    hidden: int = 192
    layers: int = 4
    vision_hidden: int = 96
    vision_depth: int = 4
    vocab_size: int = 1024
    image_views: int = 6  # image-task frames per query (the best-seen ones)
    sft_steps: int = 14_000  # all three tasks mixed
    grpo_steps: int = 300
    sft_learning_rate: float = 1e-3
    grpo_learning_rate: float = 1e-4  # 2e-5 for 100 steps left the greedy answers unchanged
    batch_size: int = 4
    num_generations: int = 4
    max_completion_length: int = 48
    seed: int = 0


def make_data(folder: Path, seeds: tuple[int, int], recipe: NanoRecipe) -> Path:
    for seed in range(*seeds):
        target = folder / f"room-{seed}"
        if not (target / "gt.json").exists():
            write_synthetic(
                SynthConfig(seed=seed, frames=recipe.frames, width=recipe.width, height=recipe.height), target
            )
    return folder


def train_nano(out, recipe: NanoRecipe = NanoRecipe(), log=print) -> Path:
    """The whole recipe; returns OUT/final (the SFT-only model stays in OUT/sft-final for comparison)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "recipe.json").write_text(json.dumps(asdict(recipe), indent=1), encoding="utf-8")
    started = time.perf_counter()
    data = make_data(out / "data" / "train", recipe.train_seeds, recipe)
    make_data(out / "data" / "held-out", recipe.held_out_seeds, recipe)
    log(f"[nano] data ready in {time.perf_counter() - started:.0f} s")
    settings = RecordSettings(video_frames=8, image_views=recipe.image_views)
    base = _initial_model(out / "init", data, settings, recipe)
    run = out / "run"
    common = dict(
        task="all",
        model=str(base),
        data=str(data),
        out=str(run),
        batch_size=recipe.batch_size,
        num_generations=recipe.num_generations,
        use_cpu=True,
        seed=recipe.seed,
        max_completion_length=recipe.max_completion_length,
        records=settings,
        save_steps=200,
    )
    if not (run / "sft" / "final" / "config.json").exists():
        train(
            TrainSettings(
                sft_steps=recipe.sft_steps, grpo_steps=0, sft_learning_rate=recipe.sft_learning_rate, **common
            )
        )
    log(f"[nano] SFT on all three tasks: {time.perf_counter() - started:.0f} s")
    sft_final = out / "sft-final"
    _copy_model(run / "sft" / "final", sft_final)
    # GRPO starts from the SFT model; train() with sft_steps=0 runs GRPO only.
    train(
        TrainSettings(
            **common | {"model": str(sft_final)}, grpo_steps=recipe.grpo_steps, learning_rate=recipe.grpo_learning_rate
        )
    )
    log(f"[nano] GRPO on all three tasks: {time.perf_counter() - started:.0f} s")
    final = out / "final"
    _copy_model(run / "final", final)
    (out / "timing.json").write_text(json.dumps({"seconds": time.perf_counter() - started}), encoding="utf-8")
    return final


def _initial_model(base: Path, data: Path, settings: RecordSettings, recipe: NanoRecipe) -> Path:
    """The untrained model, its tokenizer learned from the training records' text (kept when present)."""
    from ..models.tiny import make_recipe_model

    if (base / "config.json").exists():
        return base
    corpus = [
        r["solution"] + " " + r["prompt"][0]["content"][-1]["text"]
        for task in TASKS
        for r in records(data, task, settings)
    ]
    return make_recipe_model(base, recipe, corpus)


def _copy_model(source: Path, target: Path) -> None:
    import shutil

    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("checkpoint-*", "*.pt", "training_args.bin"))
    # How the model is to be asked: as it was trained (see reasoner.with_model_hints).
    (target / "scene_r1.json").write_text(json.dumps({"video_as_images": True, "video_frames": 8}), encoding="utf-8")
