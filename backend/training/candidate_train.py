"""Training on candidate records (candidate_records.py): an SFT warm start, then GRPO with the rule
rewards (format + id match for choosing, format + exact match for questions), on a GPU or CPU.

The same recipe as `train.py` (trl's SFTTrainer then GRPOTrainer with beta 0 and one update per
generation batch, whose gradient is the advantage-weighted log-likelihood used here), written as a
plain torch loop so it runs with torch + transformers alone (the GPU machines here have no trl or
datasets) and on a time budget. Imports neither Open3D nor trl.
"""

from __future__ import annotations

import gzip
import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .rewards import answer_reward, format_reward, id_reward

IMAGE_PAD = "<|image_pad|>"


@dataclass(frozen=True)
class CandidateTrainSettings:
    records: str  # folder with records.jsonl.gz + images/
    model: str  # the starting model folder
    out: str
    sft_seconds: float = 300.0
    grpo_seconds: float = 90.0
    batch_size: int = 32
    grpo_prompts: int = 8
    num_generations: int = 8
    sft_learning_rate: float = 1e-3
    grpo_learning_rate: float = 2e-5
    warmup_steps: int = 100
    max_completion_length: int = 96  # the reasoning lists the rows of the referred class
    temperature: float = 1.0
    device: str = "cuda"
    bf16: bool = True
    seed: int = 0
    held_out: int = 300  # records kept out of training for the log's accuracy


def read_records(folder) -> list[dict]:
    """Every records.jsonl.gz under FOLDER (itself or its sub-folders), images loaded once each."""
    from PIL import Image

    files = sorted(Path(folder).glob("**/records.jsonl.gz"))
    if not files:
        raise FileNotFoundError(f"no records.jsonl.gz under {folder}")
    cache: dict = {}
    records = []
    for path in files:
        with gzip.open(path, "rt", encoding="utf-8") as file:
            part = [json.loads(line) for line in file if line.strip()]
        for record in part:
            names = [str(path.parent / n) for n in record["images"]]
            record["images"] = [cache.setdefault(n, Image.open(n).convert("RGB")) for n in names]
        records += part
    return records


class Encoder:
    """Records -> token ids and image tensors, the way the processor would (images encoded once each)."""

    def __init__(self, processor):
        self.processor, self.tokenizer = processor, processor.tokenizer
        self.merge = processor.image_processor.merge_size**2
        self._images: dict[int, tuple] = {}

    def image(self, image):
        key = id(image)
        if key not in self._images:
            encoded = self.processor.image_processor(images=[image], return_tensors="pt")
            self._images[key] = (encoded["pixel_values"], encoded["image_grid_thw"])
        return self._images[key]

    def prompt_text(self, record) -> str:
        text = self.processor.apply_chat_template(record["prompt"], add_generation_prompt=True, tokenize=False)
        for image in record["images"]:
            tokens = int(self.image(image)[1].prod()) // self.merge
            text = text.replace(IMAGE_PAD, "\0" * tokens, 1)
        return text.replace("\0", IMAGE_PAD)

    def encode(self, records, with_solution: bool) -> list[dict]:
        """Token ids of prompt (+ solution): each part tokenized in one batch call (the reasoning tags
        and <|im_end|> are added tokens, so the parts tokenize as the whole text does)."""
        prompts = self.tokenizer([self.prompt_text(r) for r in records], add_special_tokens=False)["input_ids"]
        answers = [[] for _ in records]
        if with_solution:
            texts = [r["solution"] + "<|im_end|>" for r in records]
            answers = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        return [
            {"ids": prompt + answer, "answer_tokens": len(answer), "record": record}
            for record, prompt, answer in zip(records, prompts, answers)
        ]

    def batch(self, items, torch, left: bool):
        """Padded input_ids, attention_mask, labels (answer tokens only), pixel_values, image_grid_thw."""
        pad = self.tokenizer.pad_token_id
        length = max(len(i["ids"]) for i in items)
        input_ids = torch.full((len(items), length), pad, dtype=torch.long)
        mask = torch.zeros((len(items), length), dtype=torch.long)
        labels = torch.full((len(items), length), -100, dtype=torch.long)
        for row, item in enumerate(items):
            tokens = torch.tensor(item["ids"])
            start = length - len(tokens) if left else 0
            input_ids[row, start : start + len(tokens)] = tokens
            mask[row, start : start + len(tokens)] = 1
            if item["answer_tokens"]:
                end = start + len(tokens)
                labels[row, end - item["answer_tokens"] : end] = tokens[-item["answer_tokens"] :]
        images = [self.image(image) for item in items for image in item["record"]["images"]]
        return {
            "input_ids": input_ids,
            "attention_mask": mask,
            "labels": labels,
            "pixel_values": torch.cat([p for p, _ in images]),
            "image_grid_thw": torch.cat([g for _, g in images]),
        }


def reward(text: str, record: dict) -> float:
    """0.5 x format + accuracy (id match or exact answer), as RewardWeights weighs them."""
    if record["task"] == "candidates":
        return 0.5 * format_reward(text, "candidates") + id_reward(text, record["ids"])
    return 0.5 * format_reward(text, "vqa") + answer_reward(text, record["answers"])


def _cosine(step_fraction: float, base: float, step: int, warmup: int) -> float:
    return base * min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(step_fraction, 1.0)))


def _to(batch: dict, device, torch) -> dict:
    return {k: v.to(device) for k, v in batch.items()}


def sft(model, encoder, items, settings: CandidateTrainSettings, torch, log) -> int:
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.sft_learning_rate, weight_decay=0.01)
    start, step = time.perf_counter(), 0
    rng = random.Random(settings.seed)
    order: list[int] = []
    model.train()
    while (elapsed := time.perf_counter() - start) < settings.sft_seconds:
        if len(order) < settings.batch_size:
            order += rng.sample(range(len(items)), len(items))
        picked, order = order[: settings.batch_size], order[settings.batch_size :]
        batch = _to(encoder.batch([items[i] for i in picked], torch, left=False), settings.device, torch)
        for group in optimizer.param_groups:
            group["lr"] = _cosine(
                elapsed / settings.sft_seconds, settings.sft_learning_rate, step, settings.warmup_steps
            )
        with torch.autocast(device_type=settings.device.split(":")[0], dtype=torch.bfloat16, enabled=settings.bf16):
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step % 100 == 0:
            log({"stage": "sft", "step": step, "loss": round(loss.item(), 4), "seconds": round(elapsed, 1)})
        step += 1
    return step


def generate(model, encoder, items, settings, torch, sample: bool, repeats: int = 1):
    """Completions (text, token ids, mask) for each item repeated `repeats` times."""
    expanded = [item for item in items for _ in range(repeats)]
    batch = _to(encoder.batch(expanded, torch, left=True), settings.device, torch)
    batch.pop("labels")
    eos = encoder.tokenizer.convert_tokens_to_ids("<|im_end|>")
    with (
        torch.no_grad(),
        torch.autocast(device_type=settings.device.split(":")[0], dtype=torch.bfloat16, enabled=settings.bf16),
    ):
        output = model.generate(
            **batch,
            max_new_tokens=settings.max_completion_length,
            do_sample=sample,
            temperature=settings.temperature if sample else None,
            top_p=None,
            top_k=None,
            eos_token_id=eos,
            pad_token_id=encoder.tokenizer.pad_token_id,
        )
    completion = output[:, batch["input_ids"].shape[1] :]
    is_eos = completion == eos
    after = torch.cumsum(is_eos.int(), dim=1) - is_eos.int()  # tokens after the first eos
    mask = (after == 0).long()
    texts = encoder.tokenizer.batch_decode(
        completion.masked_fill(mask == 0, encoder.tokenizer.pad_token_id), skip_special_tokens=True
    )
    return batch, completion, mask, texts, expanded


def grpo(model, encoder, items, settings: CandidateTrainSettings, torch, log) -> int:
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.grpo_learning_rate, weight_decay=0.0)
    start, step = time.perf_counter(), 0
    rng = random.Random(settings.seed + 1)
    while time.perf_counter() - start < settings.grpo_seconds:
        picked = [items[i] for i in rng.sample(range(len(items)), settings.grpo_prompts)]
        model.eval()
        batch, completion, mask, texts, expanded = generate(
            model, encoder, picked, settings, torch, True, settings.num_generations
        )
        rewards = torch.tensor([reward(t, i["record"]) for t, i in zip(texts, expanded)], device=settings.device)
        grouped = rewards.view(-1, settings.num_generations)
        advantages = ((grouped - grouped.mean(1, keepdim=True)) / (grouped.std(1, keepdim=True) + 1e-4)).view(-1)
        model.train()
        sequence = torch.cat([batch["input_ids"], completion], dim=1)
        attention = torch.cat([batch["attention_mask"], mask], dim=1)
        with torch.autocast(device_type=settings.device.split(":")[0], dtype=torch.bfloat16, enabled=settings.bf16):
            logits = model(
                input_ids=sequence,
                attention_mask=attention,
                pixel_values=batch["pixel_values"],
                image_grid_thw=batch["image_grid_thw"],
            ).logits
        prompt_length = batch["input_ids"].shape[1]
        logp = torch.log_softmax(logits[:, prompt_length - 1 : -1].float(), dim=-1)
        token_logp = logp.gather(-1, completion.unsqueeze(-1)).squeeze(-1)
        loss = -(advantages[:, None] * token_logp * mask).sum() / mask.sum().clamp(min=1)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step % 10 == 0:
            log(
                {
                    "stage": "grpo",
                    "step": step,
                    "reward": round(float(rewards.mean()), 4),
                    "loss": round(float(loss), 4),
                }
            )
        step += 1
    return step


def accuracy(model, encoder, items, settings, torch, chunk: int = 64) -> dict:
    """Greedy answers scored by the rewards' accuracy parts, per task."""
    model.eval()
    scores: dict[str, list[float]] = {}
    for begin in range(0, len(items), chunk):
        part = items[begin : begin + chunk]
        *_, texts, expanded = generate(model, encoder, part, settings, torch, False)
        for text, item in zip(texts, expanded):
            record = item["record"]
            value = (
                id_reward(text, record["ids"])
                if record["task"] == "candidates"
                else answer_reward(text, record["answers"])
            )
            scores.setdefault(record["task"], []).append(float(value == 1.0))
    return {task: round(sum(v) / len(v), 4) for task, v in scores.items()}


def train_candidates(settings: CandidateTrainSettings, log=print) -> Path:
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    torch.manual_seed(settings.seed)
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_settings.json").write_text(json.dumps(asdict(settings), indent=1), encoding="utf-8")

    def note(entry):  # written as it comes, so a run stopped at its time limit keeps its log
        with (out / "log.jsonl").open("a", encoding="utf-8") as file:
            file.write(json.dumps(entry) + "\n")
        log(json.dumps(entry))

    records = read_records(settings.records)
    random.Random(settings.seed).shuffle(records)
    processor = AutoProcessor.from_pretrained(settings.model)
    encoder = Encoder(processor)
    started = time.perf_counter()
    held = min(settings.held_out, len(records) // 10)
    train_items = encoder.encode(records[held:], with_solution=True)
    held_items = encoder.encode(records[:held], with_solution=False)
    note({"stage": "encode", "records": len(records), "seconds": round(time.perf_counter() - started, 1)})
    model = AutoModelForImageTextToText.from_pretrained(settings.model, dtype=torch.float32).to(settings.device)
    steps = sft(model, encoder, train_items, settings, torch, note)
    save(model, processor, out / "sft-final")
    note({"stage": "sft-done", "steps": steps, "held_out": accuracy(model, encoder, held_items, settings, torch)})
    if settings.grpo_seconds > 0:
        steps = grpo(model, encoder, train_items, settings, torch, note)
        note({"stage": "grpo-done", "steps": steps, "held_out": accuracy(model, encoder, held_items, settings, torch)})
    return save(model, processor, out / "final")


def save(model, processor, folder: Path) -> Path:
    """A model folder the pipeline loads (with how it is to be asked)."""
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    (folder / "scene_r1.json").write_text(json.dumps({"video_as_images": True, "video_frames": 8}), encoding="utf-8")
    return folder
