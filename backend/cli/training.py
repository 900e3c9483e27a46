"""`scene-r1 train`, `train-nano`, `make-tiny-models` and `eval`."""

from __future__ import annotations

from pathlib import Path

from ...shared.scene import SceneError
from .common import at_least, model_arguments, option, pipeline_settings


def register(commands) -> None:
    from ..training.train import TrainSettings

    training = commands.add_parser(
        "train", help="GRPO (with an optional SFT warm start) from 2D boxes, spans or answers"
    )
    training.add_argument(
        "--task",
        required=True,
        help="temporal, image, vqa, a comma-separated mix of them, or all (one model on the mix)",
    )
    training.add_argument("--model", required=True, help="Hugging Face id or folder to start from")
    training.add_argument("--data", type=Path, required=True, help="a folder of scene folders with gt.json")
    training.add_argument("--out", type=Path, required=True)
    option(training, "--steps", TrainSettings, "grpo_steps", "GRPO steps")
    option(training, "--sft-steps", TrainSettings, "sft_steps", "supervised warm-start steps before GRPO (0: none)")
    option(training, "--lr", TrainSettings, "learning_rate", "GRPO learning rate")
    option(training, "--batch-size", TrainSettings, "batch_size", "prompts per device per step")
    option(training, "--generations", TrainSettings, "num_generations", "completions per prompt")
    option(training, "--max-completion-length", TrainSettings, "max_completion_length", "tokens per completion")
    training.add_argument("--image-views", type=int, default=1, help="image task: frames per query, best-seen first")
    option(training, "--lora", TrainSettings, "lora", "train LoRA adapters instead of all weights")
    training.add_argument("--giou", action="store_true", help="GIoU instead of IoU for the box reward")
    option(training, "--vllm", TrainSettings, "use_vllm", "generate with vLLM (colocated)")
    option(training, "--bf16", TrainSettings, "bf16", "bfloat16 training")
    option(training, "--cpu", TrainSettings, "use_cpu", "train on the CPU")
    option(training, "--seed", TrainSettings, "seed", "random seed")
    training.set_defaults(run=run_train)

    nano = commands.add_parser("train-nano", help="train scene-r1-nano from scratch on synthetic rooms (SFT, GRPO)")
    nano.add_argument("--out", type=Path, default=Path("runs/nano"))
    nano.add_argument(
        "--quick", action="store_true", help="a few minutes' version of the recipe (checks the machinery)"
    )
    nano.set_defaults(run=run_train_nano)

    tiny = commands.add_parser(
        "make-tiny-models", help="tiny random-weight Qwen2.5-VL and SAM2 models (tests, offline)"
    )
    tiny.add_argument("--out", type=Path, required=True)
    tiny.set_defaults(run=run_make_tiny_models)

    evaluation = commands.add_parser(
        "eval", help="run the pipeline over a dataset and score it: Acc@0.25/0.5, temporal and 2D IoU, VQA exact match"
    )
    eval_arguments(evaluation)
    evaluation.add_argument("--data", type=Path, required=True, help="a folder of scene folders with gt.json")
    evaluation.add_argument("--out", type=Path, required=True)
    evaluation.add_argument("--limit", type=at_least(1), default=None, help="queries per scene")
    evaluation.add_argument("--format", default=None)
    model_arguments(evaluation)
    evaluation.add_argument("--model", dest="vlm", default=None, help="same as --vlm")
    evaluation.set_defaults(run=run_eval)


def eval_arguments(evaluation) -> None:
    evaluation.add_argument(
        "--task",
        choices=("ground", "vqa", "proposals", "ceiling"),
        required=True,
        help="proposals: recall of a scan's 3D instance proposals against the ground truth; ceiling: the "
        "candidate path's 3D accuracy with the right ids chosen (the lifting alone)",
    )
    evaluation.add_argument(
        "--compare", action="store_true", help="ground: the box path and the candidate path side by side"
    )


def run_train(args) -> int:
    from ...shared.scene import SceneError
    from ..training.records import RecordSettings, task_list
    from ..training.rewards import RewardWeights
    from ..training.train import TrainSettings, train

    try:
        task_list(args.task)
    except ValueError as error:
        raise SceneError(f"--task: {error}") from None
    settings = TrainSettings(
        task=args.task,
        model=args.model,
        data=str(args.data),
        out=str(args.out),
        sft_steps=args.sft_steps,
        grpo_steps=args.steps,
        learning_rate=args.lr,
        batch_size=args.batch_size,
        num_generations=args.generations,
        max_completion_length=args.max_completion_length,
        lora=args.lora,
        use_vllm=args.vllm,
        bf16=args.bf16,
        use_cpu=args.cpu,
        seed=args.seed,
        rewards=RewardWeights(giou=args.giou),
        records=RecordSettings(image_views=args.image_views),
    )
    final = train(settings)
    print(f"trained model: {final} (reward curves: {args.out}/reward_curves.json)")
    return 0


def run_train_nano(args) -> int:
    from dataclasses import replace

    from ..training.nano import NanoRecipe, train_nano

    recipe = NanoRecipe()
    if args.quick:  # the recipe's shape in minutes, for checking a machine (not the shipped model)
        recipe = replace(
            recipe,
            train_seeds=(1000, 1004),
            held_out_seeds=(5000, 5002),
            frames=8,
            image_views=2,
            sft_steps=20,
            grpo_steps=2,
        )
    final = train_nano(args.out, recipe)
    print(
        f"scene-r1-nano: {final} (SFT only: {args.out}/sft-final); evaluate with "
        f"scene-r1 eval --data {args.out}/data/held-out --vlm {final} --video-as-images"
    )
    return 0


def run_make_tiny_models(args) -> int:
    from ..models.tiny import make_tiny_models

    paths = make_tiny_models(args.out)
    print(f"tiny random-weight models: --vlm {paths['vlm']} --tracker {paths['tracker']}")
    return 0


def run_eval(args) -> int:
    from rich.progress import Progress

    from ..api import build_pipeline
    from ..eval.evaluate import evaluate

    if args.task in ("proposals", "ceiling"):
        return run_proposals(args)
    if args.compare and args.task != "ground":
        raise SceneError("--compare compares the box and candidate grounding paths: use it with --task ground")
    with Progress(transient=True) as bar:
        task = bar.add_task(f"eval {args.task}", total=None)
        progress = lambda n: bar.update(task, completed=n)  # noqa: E731
        if args.compare:
            from ..eval.candidates import compare_grounding

            compare_grounding(args.data, pipeline_settings(args), args.out, limit=args.limit, progress=progress)
            print((args.out / "compare.md").read_text(encoding="utf-8"))
            print(f"wrote {args.out}/compare.md, {args.out}/box/ and {args.out}/candidates/")
            return 0
        pipeline = build_pipeline(pipeline_settings(args))
        report = evaluate(args.data, args.task, pipeline, args.out, limit=args.limit, progress=progress)
    print((args.out / "eval.md").read_text(encoding="utf-8"))
    print(f"wrote {args.out}/eval.json and {args.out}/eval.md ({len(report['rows'])} rows)")
    return 0


def run_proposals(args) -> int:
    from ..eval.candidates import ceiling_report, proposal_report

    if args.task == "ceiling":
        print(ceiling_report(args.data, args.out, args.limit)["table"])
        return 0
    report = proposal_report(args.data, args.out)
    print(report["table"])
    print(f"wrote {args.out}/proposals.json and {args.out}/proposals.md")
    return 0
