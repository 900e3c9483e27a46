"""`scene-r1 train`: an optional SFT warm start, then GRPO (trl's GRPOTrainer) with the rule rewards.

A typed config (TrainSettings) + trl's trainers, like TRL's own config/trainer pairs. Multi-GPU:
run the same command under `accelerate launch --config_file configs/accelerate/<ddp|zero2|zero3>.yaml`;
`--vllm` generates with vLLM (colocated) where it is installed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .dataset import as_dataset
from .records import RecordSettings
from .rewards import RewardWeights, task_rewards


@dataclass(frozen=True)
class TrainSettings:
    task: str  # temporal | image | vqa
    model: str  # Hugging Face id or folder
    data: str  # folder of scene folders (gt.json) or one scene folder
    out: str
    sft_steps: int = 0  # 0: no warm start
    grpo_steps: int = 100
    learning_rate: float = 1e-5
    sft_learning_rate: float = 1e-4
    batch_size: int = 2  # prompts per device and step
    num_generations: int = 4  # completions per prompt (the group GRPO normalizes over)
    max_completion_length: int = 128
    temperature: float = 1.0
    beta: float = 0.0  # KL weight (0: no reference model, as in DAPO / Dr. GRPO)
    lora: bool = False
    lora_rank: int = 16
    use_vllm: bool = False
    bf16: bool = False
    use_cpu: bool = False
    seed: int = 0
    save_steps: int = 50
    logging_steps: int = 1
    rewards: RewardWeights = field(default_factory=RewardWeights)
    records: RecordSettings = field(default_factory=RecordSettings)


def _lora_config(settings: TrainSettings):
    if not settings.lora:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=settings.lora_rank,
        lora_alpha=2 * settings.lora_rank,
        lora_dropout=0.05,
        task_type="CAUSAL_LM",
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
    )


def _checkpoint(folder: Path) -> str | bool:
    """Resume from the latest checkpoint-N in folder, if any."""
    return any(folder.glob("checkpoint-*")) if folder.is_dir() else False


def train(settings: TrainSettings) -> Path:
    """Run the warm start and GRPO; returns the folder of the final model (loadable by the pipeline)."""
    import torch
    from transformers import AutoProcessor

    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_settings.json").write_text(json.dumps(asdict(settings), indent=1, default=str), encoding="utf-8")
    dataset = as_dataset(settings.data, settings.task, settings.records)
    processor = AutoProcessor.from_pretrained(settings.model)
    dtype = torch.bfloat16 if settings.bf16 else torch.float32
    model_path = settings.model
    common = dict(
        use_cpu=settings.use_cpu,
        bf16=settings.bf16,
        seed=settings.seed,
        report_to=[],
        logging_steps=settings.logging_steps,
        save_steps=settings.save_steps,
        save_total_limit=2,
        remove_unused_columns=False,
    )

    if settings.sft_steps > 0:
        model_path = str(_warm_start(settings, dataset, processor, dtype, common, out / "sft"))

    if settings.grpo_steps <= 0:  # a warm start only
        if settings.sft_steps <= 0:
            raise ValueError("nothing to train: both sft_steps and grpo_steps are 0")
        return Path(model_path)
    return _grpo(settings, dataset, processor, dtype, common, model_path, out)


def _warm_start(settings: TrainSettings, dataset, processor, dtype, common: dict, sft_out: Path) -> Path:
    """SFT on the records' solutions; returns the folder of the warm-started model."""
    from transformers import AutoModelForImageTextToText
    from trl import SFTConfig, SFTTrainer

    sft_data = dataset.map(lambda r: {"completion": [{"role": "assistant", "content": r["solution"]}]}).select_columns(
        ["prompt", "completion", "images"]
    )
    model = AutoModelForImageTextToText.from_pretrained(settings.model, dtype=dtype)
    trainer = SFTTrainer(
        model=model,
        train_dataset=sft_data,
        processing_class=processor,
        peft_config=_lora_config(settings),
        args=SFTConfig(
            output_dir=str(sft_out),
            max_steps=settings.sft_steps,
            learning_rate=settings.sft_learning_rate,
            per_device_train_batch_size=settings.batch_size,
            max_length=None,
            **common,
        ),
    )
    trainer.train(resume_from_checkpoint=_checkpoint(sft_out))
    final = sft_out / "final"
    _save(trainer, processor, final)
    _write_log(trainer.state.log_history, sft_out / "log.jsonl")
    return final


def _grpo(settings: TrainSettings, dataset, processor, dtype, common: dict, model_path: str, out: Path) -> Path:
    """GRPO with the task's rule rewards from `model_path`; returns OUT/final."""
    from transformers import AutoModelForImageTextToText
    from trl import GRPOConfig, GRPOTrainer

    grpo_out = out / "grpo"
    functions, weights = task_rewards(settings.task, settings.rewards)
    model = AutoModelForImageTextToText.from_pretrained(model_path, dtype=dtype)
    config = GRPOConfig(
        output_dir=str(grpo_out),
        max_steps=settings.grpo_steps,
        learning_rate=settings.learning_rate,
        per_device_train_batch_size=settings.batch_size
        * settings.num_generations,  # completions: prompts x generations
        num_generations=settings.num_generations,
        max_completion_length=settings.max_completion_length,
        temperature=settings.temperature,
        beta=settings.beta,
        reward_weights=weights,
        use_vllm=settings.use_vllm,
        **({"vllm_mode": "colocate"} if settings.use_vllm else {}),
        **common,
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=functions,
        args=config,
        train_dataset=dataset,
        processing_class=processor,
        peft_config=_lora_config(settings) if settings.sft_steps == 0 else None,
    )
    trainer.train(resume_from_checkpoint=_checkpoint(grpo_out))
    final = out / "final"
    _save(trainer, processor, final)
    _write_log(trainer.state.log_history, grpo_out / "log.jsonl")
    write_reward_curves(trainer.state.log_history, out / "reward_curves.json")
    return final


def _save(trainer, processor, folder: Path) -> None:
    model = trainer.model
    if hasattr(model, "merge_and_unload"):  # LoRA: ship a plain model the pipeline loads as it is
        model = model.merge_and_unload()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)


def _write_log(history: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as log:
        for entry in history:
            log.write(json.dumps(entry) + "\n")


def write_reward_curves(history: list[dict], path: Path) -> dict:
    """Per-component reward means by step (trl logs them as rewards/<name>/mean)."""
    curves: dict[str, list] = {}
    for entry in history:
        for key, value in entry.items():
            if (key.startswith("rewards/") and key.endswith("/mean")) or key == "reward":
                curves.setdefault(key, []).append([entry.get("step"), value])
    path.write_text(json.dumps(curves, indent=1), encoding="utf-8")
    return curves
