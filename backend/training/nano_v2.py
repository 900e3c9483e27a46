"""scene-r1-nano v2: the small Qwen2.5-VL-architecture model trained from scratch to choose among a
scene's candidates (and answer questions with the table), by the project's recipe: an SFT warm
start, then GRPO with the id-match (and exact-match) reward beside the format reward.

Two steps, so the rendering (Open3D, CPU) and the training (GPU) can run on different machines:

  python -m scene_r1.backend.training.nano_v2 records --out runs/nano-v2/records      # CPU, Open3D
  python -m scene_r1.backend.training.nano_v2 train --records runs/nano-v2/records --out runs/nano-v2
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class NanoV2Recipe:
    train_seeds: tuple[int, int] = (20000, 20800)  # household rooms, naming styles alternating by seed
    held_out_seeds: tuple[int, int] = (50000, 50008)  # never used in training (the eval's rooms)
    frames: int = 8  # rendered per training room to choose the marked view from
    hidden: int = 192
    layers: int = 6
    vision_hidden: int = 96
    vision_depth: int = 4
    vocab_size: int = 2048
    sft_seconds: float = 300.0
    grpo_seconds: float = 100.0
    batch_size: int = 32
    grpo_prompts: int = 8
    num_generations: int = 8
    sft_learning_rate: float = 1e-3
    grpo_learning_rate: float = 2e-5
    seed: int = 0


def make_records(out, recipe: NanoV2Recipe = NanoV2Recipe(), seeds=None) -> int:
    from .candidate_records import CandidateRecordSettings, write_candidate_records

    seeds = range(*recipe.train_seeds) if seeds is None else seeds
    return write_candidate_records(out, seeds, CandidateRecordSettings(frames=recipe.frames))


def train_nano_v2(records, out, recipe: NanoV2Recipe = NanoV2Recipe(), device: str = "cuda", log=print) -> Path:
    """The initial model (tokenizer learned from the records' text), then SFT and GRPO."""
    from ..models.tiny import make_recipe_model
    from .candidate_train import CandidateTrainSettings, read_records, train_candidates

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "recipe.json").write_text(json.dumps(asdict(recipe), indent=1), encoding="utf-8")
    corpus = [r["prompt"][0]["content"][-1]["text"] + " " + r["solution"] for r in read_records(records)[::3]]
    base = make_recipe_model(out / "init", recipe, corpus)
    settings = CandidateTrainSettings(
        records=str(records),
        model=str(base),
        out=str(out / "run"),
        sft_seconds=recipe.sft_seconds,
        grpo_seconds=recipe.grpo_seconds,
        batch_size=recipe.batch_size,
        grpo_prompts=recipe.grpo_prompts,
        num_generations=recipe.num_generations,
        sft_learning_rate=recipe.sft_learning_rate,
        grpo_learning_rate=recipe.grpo_learning_rate,
        device=device,
        bf16=device.startswith("cuda"),
        seed=recipe.seed,
    )
    return train_candidates(settings, log=log)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="nano_v2", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    records = commands.add_parser("records", help="render the training rooms into candidate records")
    records.add_argument("--out", type=Path, required=True)
    records.add_argument("--first", type=int, default=None, help="first seed (default: the recipe's)")
    records.add_argument("--count", type=int, default=None)
    train = commands.add_parser("train", help="make the initial model, then SFT and GRPO")
    train.add_argument("--records", type=Path, required=True)
    train.add_argument("--out", type=Path, required=True)
    train.add_argument("--device", default="cuda")
    train.add_argument("--sft-seconds", type=float, default=None)
    train.add_argument("--grpo-seconds", type=float, default=None)
    args = parser.parse_args(argv)
    recipe = NanoV2Recipe()
    if args.command == "records":
        first = recipe.train_seeds[0] if args.first is None else args.first
        count = recipe.train_seeds[1] - recipe.train_seeds[0] if args.count is None else args.count
        print(make_records(args.out, recipe, range(first, first + count)), "records")
        return 0
    overrides = {k: v for k, v in {"sft_seconds": args.sft_seconds, "grpo_seconds": args.grpo_seconds}.items() if v}
    if overrides:
        from dataclasses import replace

        recipe = replace(recipe, **overrides)
    print(train_nano_v2(args.records, args.out, recipe, device=args.device))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
