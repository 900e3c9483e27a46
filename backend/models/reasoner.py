"""The vision-language reasoner over Hugging Face image-text-to-text models (Qwen2.5-VL, Qwen2-VL,
Qwen3-VL; the Scene-R1 checkpoint is one more id): temporal grounding, image grounding and 3D VQA
in the paper's `<think>...</think><answer>...</answer>` form.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from ...shared.scene import Scene
from ..geometry.upright import turn_image, unturn_box, upright_turns
from .constrained import Number, next_allowed
from .loading import ModelError, load_pretrained, torch_dtype
from .parsing import ParsedBox, ParseError, Reply, parse_boxes, parse_span

THINK_THEN_ANSWER = "Think step by step inside <think></think>, then give the final answer inside <answer></answer>."

TEMPORAL_PROMPT = (
    "The video shows a room, sampled at {fps:.2f} frames per second over {duration:.1f} seconds. "
    'When is "{query}" best seen? ' + THINK_THEN_ANSWER + ' The answer is a time span in seconds, like "3.5s to 7s".'
)
IMAGE_PROMPT = (
    'Locate "{query}" in the image. '
    + THINK_THEN_ANSWER
    + ' The answer is JSON: {{"bbox_2d": [x1, y1, x2, y2], "label": "..."}}{coordinates}.'
)
IMAGE_PROMPT_ALL = (
    'Locate every object matching "{query}" in the image. '
    + THINK_THEN_ANSWER
    + ' The answer is a JSON list: [{{"bbox_2d": [x1, y1, x2, y2], "label": "..."}}, ...]{coordinates}.'
)
VQA_PROMPT = (
    "The video shows a room. {question} " + THINK_THEN_ANSWER + " Keep the answer short: a word, a number or a phrase."
)
FRAME_TIMES = "The {count} images are frames of the video at {times} seconds. "


def frames_preamble(times) -> str:
    """Said before a prompt when the video is given as separate images (video_as_images), so the
    model knows each frame's time: the training records use the same words."""
    return FRAME_TIMES.format(count=len(times), times=", ".join(f"{t:.1f}" for t in times))


# How each model family writes box coordinates. Qwen2.5-VL was trained on absolute pixels of
# the image the processor fed it (resized to multiples of 28); Qwen2-VL and Qwen3-VL on 0..1000.
BOX_CONVENTIONS = {
    "qwen2_5_vl": "resized-pixels",
    "qwen2_vl": "relative-1000",
    "qwen3_vl": "relative-1000",
    "qwen3_vl_moe": "relative-1000",
}


def box_to_frame(box, convention: str, resized_size: tuple[int, int], frame_size: tuple[int, int]) -> np.ndarray:
    """A model box in its family's coordinates -> pixels of the original frame (width, height)."""
    box = np.asarray(box, dtype=np.float64)
    width, height = frame_size
    if convention == "resized-pixels":
        scale = np.array([width / resized_size[0], height / resized_size[1]] * 2)
    elif convention == "relative-1000":
        scale = np.array([width / 1000.0, height / 1000.0] * 2)
    else:
        raise ModelError(f"unknown box convention {convention!r}")
    return box * scale


@dataclass
class Generation:
    reply: Reply
    confidence: float  # geometric mean of the answer tokens' probabilities
    constrained: bool = False  # the answer was decoded under the task's format after a free answer failed to parse
    seconds: float = 0.0
    tokens: int = 0
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class VLMSettings:
    model: str = "Qwen/Qwen2.5-VL-7B-Instruct"
    device: str = "cpu"  # "cuda", "cuda:1", ...
    dtype: str = "auto"  # float32 / bfloat16 / float16 / auto (the checkpoint's own)
    max_new_tokens: int = 256
    video_frames: int = 32  # frames shown for temporal grounding and VQA (even: Qwen pairs frames)
    max_video_pixels: int | None = None  # per frame; None: the processor's own setting
    constrained_fallback: bool = True
    box_convention: str | None = None  # override BOX_CONVENTIONS for unknown families
    video_as_images: bool = (
        False  # frames as separate images with their times in words (models trained that way, e.g. scene-r1-nano)
    )


MODEL_HINTS = "scene_r1.json"  # in a model folder: how the model was trained to be asked


def with_model_hints(settings: VLMSettings) -> VLMSettings:
    """Settings a model folder asks for (e.g. scene-r1-nano: frames as images, 8 of them)."""
    import json
    from dataclasses import replace
    from pathlib import Path

    hints = Path(settings.model).expanduser() / MODEL_HINTS
    if not hints.is_file():
        return settings
    known = {"video_as_images", "video_frames", "box_convention"}
    return replace(settings, **{k: v for k, v in json.loads(hints.read_text(encoding="utf-8")).items() if k in known})


def sample_times(scene: Scene, count: int) -> list[int]:
    """Frame indices evenly spaced in time (an even count: Qwen's video patches span two frames)."""
    count = max(2, min(count, len(scene)))
    count -= count % 2
    wanted = np.linspace(scene.timestamps[0], scene.timestamps[-1], count)
    indices = [int(np.clip(np.searchsorted(scene.timestamps, t), 0, len(scene) - 1)) for t in wanted]
    return indices


class Reasoner:
    """One loaded model + processor, asked in the paper's three tasks."""

    def __init__(self, settings: VLMSettings = VLMSettings()):
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        settings = with_model_hints(settings)
        self.settings = settings
        self.torch = torch
        self.processor = load_pretrained(AutoProcessor, settings.model)
        self.model = load_pretrained(
            AutoModelForImageTextToText, settings.model, device=settings.device, dtype=torch_dtype(settings.dtype)
        ).eval()
        family = self.model.config.model_type
        self.convention = settings.box_convention or BOX_CONVENTIONS.get(family)
        if self.convention is None:
            raise ModelError(
                f"no box convention known for model family {family!r}; "
                "pass box_convention='resized-pixels' or 'relative-1000'"
            )
        self.tokenizer = self.processor.tokenizer
        self._digit_tokens = None
        self._grid = (0, 0)
        self.model_seconds = 0.0  # time inside model.generate, for the overhead benchmark

    # ---- generation -------------------------------------------------------------------------
    def _inputs(self, prompt: str, images=None, video=None, video_fps=None):
        content = [{"type": "image"} for _ in images or []]
        if video is not None:
            content.append({"type": "video"})
        content.append({"type": "text", "text": prompt})
        text = self.processor.apply_chat_template(
            [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
        )
        kwargs = {}
        if video is not None:
            kwargs["videos"] = [video]
            kwargs["video_metadata"] = [
                {"fps": video_fps, "total_num_frames": len(video), "frames_indices": list(range(len(video)))}
            ]
            kwargs["do_sample_frames"] = False  # our frames are already sampled in time
            if hasattr(self.processor.video_processor, "cap_pixels_per_frame"):
                kwargs["cap_pixels_per_frame"] = True  # the reference (qwen-vl-utils) token budget per frame
            if self.settings.max_video_pixels:
                kwargs["videos_kwargs"] = {
                    "size": {"shortest_edge": 28 * 28 * 4, "longest_edge": self.settings.max_video_pixels}
                }
        with warnings.catch_warnings():  # frames are read-only views the processor only reads
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            inputs = self.processor(text=[text], images=list(images) if images else None, return_tensors="pt", **kwargs)
        if "image_grid_thw" in inputs:
            _, rows, cols = inputs["image_grid_thw"][0].tolist()
            patch = self.processor.image_processor.patch_size
            self._grid = (cols * patch, rows * patch)  # the resized image the model saw (width, height)
        return inputs.to(self.model.device)

    def generate(
        self, prompt: str, images=None, video=None, video_fps=None, answer_format=None, validate=None, constrain=None
    ) -> Generation:
        """Ask once; if `validate(reply)` fails and a format is given, decode the answer again under
        that format (after the model's own reasoning), so a weak model still yields a usable answer.
        `constrain(tokenizer, prompt_length)` gives a logits processor that bounds the free answer
        (e.g. references.ReferenceConstraint)."""
        start = time.perf_counter()
        inputs = self._inputs(prompt, images, video, video_fps)
        prompt_length = inputs["input_ids"].shape[1]
        extra = {}
        if constrain is not None:
            from transformers import LogitsProcessorList

            extra["logits_processor"] = LogitsProcessorList([constrain(self.tokenizer, prompt_length)])
        model_start = time.perf_counter()
        with self.torch.inference_mode():
            output = self.model.generate(
                **inputs,
                max_new_tokens=self.settings.max_new_tokens,
                do_sample=False,
                output_scores=True,
                return_dict_in_generate=True,
                **extra,
            )
        self.model_seconds += time.perf_counter() - model_start
        new_tokens = output.sequences[0, prompt_length:]
        text = self.tokenizer.decode(new_tokens, skip_special_tokens=False)
        text = _strip_chat_tokens(text)
        reply = Reply.parse(text)
        generation = Generation(
            reply, _confidence(output.scores, new_tokens), tokens=len(new_tokens), meta={"prompt_tokens": prompt_length}
        )
        if validate is not None:
            try:
                validate(reply)
            except ParseError:
                if not (self.settings.constrained_fallback and answer_format):
                    raise
                generation = self._constrained(
                    inputs, reply, answer_format() if callable(answer_format) else answer_format
                )
        generation.seconds = time.perf_counter() - start
        return generation

    def _constrained(self, inputs, free: Reply, answer_format: list) -> Generation:
        """Decode `<answer>` + the format (literal text and NUMBER slots) after the free reasoning."""
        torch = self.torch
        think = free.think or free.text.split("<answer>")[0].strip()
        forced = self.tokenizer.encode(f"<think>{think}</think><answer>", add_special_tokens=False)
        input_ids = torch.cat([inputs["input_ids"], torch.tensor([forced], device=inputs["input_ids"].device)], dim=1)
        attention = torch.ones_like(input_ids)
        start_length = input_ids.shape[1]
        pieces = [
            p if isinstance(p, Number) else self.tokenizer.encode(p, add_special_tokens=False) for p in answer_format
        ]
        digits = self._digits()
        eos = self.tokenizer.convert_tokens_to_ids("<|im_end|>")

        def allowed(_batch, ids):
            return next_allowed(pieces, ids[start_length:].tolist(), digits, eos)

        extra = {}
        for key, value in inputs.items():
            if key in ("input_ids", "attention_mask"):
                continue
            if key.endswith("token_type_ids"):  # aligned with the tokens: the forced ones are text (0)
                value = torch.cat([value, torch.zeros((1, len(forced)), dtype=value.dtype, device=value.device)], dim=1)
            extra[key] = value
        model_start = time.perf_counter()
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=input_ids,
                attention_mask=attention,
                **extra,
                max_new_tokens=64,
                do_sample=False,
                prefix_allowed_tokens_fn=allowed,
                output_scores=True,
                return_dict_in_generate=True,
            )
        self.model_seconds += time.perf_counter() - model_start
        new_tokens = output.sequences[0, start_length:]
        answer = _strip_chat_tokens(self.tokenizer.decode(new_tokens, skip_special_tokens=False))
        text = f"<think>{think}</think><answer>{answer}</answer>"
        return Generation(
            Reply.parse(text), _confidence(output.scores, new_tokens), constrained=True, tokens=len(new_tokens)
        )

    def _digits(self) -> dict[int, str]:
        """token id -> its digits, for tokens that are only ASCII digits (up to 4)."""
        if self._digit_tokens is None:
            self._digit_tokens = {}
            for token_id in range(len(self.tokenizer)):
                text = self.tokenizer.decode([token_id])
                if text.isdigit() and text.isascii() and len(text) <= 4:
                    self._digit_tokens[token_id] = text
        return self._digit_tokens

    # ---- the paper's tasks ------------------------------------------------------------------
    def video_of(self, scene: Scene) -> tuple[list[int], np.ndarray, float]:
        """(frame indices, THWC uint8 video, sampled fps) for the scene's duration."""
        indices = sample_times(scene, self.settings.video_frames)
        video = np.rot90(np.stack([scene.frame(i).rgb for i in indices]), upright_turns(scene.poses), axes=(1, 2))
        video = np.ascontiguousarray(video)  # a portrait capture's frames, shown upright
        duration = max(scene.timestamps[indices[-1]] - scene.timestamps[indices[0]], 1e-3)
        return indices, video, (len(indices) - 1) / duration if len(indices) > 1 else 1.0

    def temporal_grounding(self, scene: Scene, query: str) -> tuple[Generation, tuple[float, float]]:
        """When in the video is the query best seen: (generation, span in scene seconds)."""
        indices, video, fps = self.video_of(scene)
        start_time = float(scene.timestamps[indices[0]])
        duration = float(scene.timestamps[indices[-1]]) - start_time
        prompt = TEMPORAL_PROMPT.format(fps=fps, duration=duration, query=_clean(query))
        generation = self._ask_video(
            prompt,
            scene,
            indices,
            video,
            fps,
            answer_format=[Number(int(duration) + 1), "s to ", Number(int(duration) + 1, above=0), "s"],
            validate=lambda reply: parse_span(reply.answer),
        )
        span = parse_span(generation.reply.answer, duration)
        return generation, (start_time + span[0], start_time + span[1])

    def image_grounding(
        self, rgb: np.ndarray, query: str, every: bool = False, turns: int = 0
    ) -> tuple[Generation, list[ParsedBox]]:
        """Where in this frame: (generation, boxes in the frame's pixels, ordered and clipped)."""
        rgb = turn_image(rgb, turns)  # `turns` quarter turns stand the frame upright (geometry.upright)
        height, width = rgb.shape[:2]
        coordinates = (
            " in pixels of this image" if self.convention == "resized-pixels" else " with coordinates from 0 to 1000"
        )
        prompt = (IMAGE_PROMPT_ALL if every else IMAGE_PROMPT).format(query=_clean(query), coordinates=coordinates)

        def box_format():  # after the processor ran: the limits are the size the model saw
            high_x, high_y = (1000, 1000) if self.convention == "relative-1000" else self._grid
            return [
                '{"bbox_2d": [',
                Number(high_x),
                ", ",
                Number(high_y),
                ", ",
                Number(high_x, above=0),
                ", ",
                Number(high_y, above=1),
                "]}",
            ]

        generation = self.generate(
            prompt,
            images=[rgb],
            answer_format=box_format,
            validate=lambda reply: self._frame_boxes(reply, width, height),
        )
        boxes = self._frame_boxes(generation.reply, width, height)
        if turns % 4:  # shown turned upright: the boxes back in the frame's own pixels
            size = (rgb.shape[1], rgb.shape[0]) if turns % 2 == 0 else (rgb.shape[0], rgb.shape[1])
            boxes = [ParsedBox(unturn_box(b.box, turns, size), b.label) for b in boxes]
        return generation, boxes

    def _frame_boxes(self, reply: Reply, width: int, height: int) -> list[ParsedBox]:
        """The reply's boxes in frame pixels, clipped; boxes under a pixel wide are dropped."""
        boxes = []
        for parsed in parse_boxes(reply.answer):
            box = box_to_frame(parsed.box, self.convention, self._grid, (width, height))
            box = np.clip(box, 0, [width, height, width, height])
            if box[2] - box[0] >= 1 and box[3] - box[1] >= 1:
                boxes.append(ParsedBox(tuple(float(v) for v in box), parsed.label))
        if not boxes:
            raise ParseError(
                f"the model's boxes lie outside the {width}x{height} frame or are empty: {reply.answer[:120]!r}"
            )
        return boxes

    def answer_question(self, scene: Scene, question: str) -> Generation:
        indices, video, fps = self.video_of(scene)
        return self._ask_video(
            VQA_PROMPT.format(question=_clean(question, question=True)), scene, indices, video, fps, answer_format=None
        )

    def _ask_video(self, prompt, scene, indices, video, fps, **kwargs) -> Generation:
        if self.settings.video_as_images:
            times = [float(scene.timestamps[i] - scene.timestamps[indices[0]]) for i in indices]
            return self.generate(frames_preamble(times) + prompt, images=list(video), **kwargs)
        return self.generate(prompt, video=video, video_fps=fps, **kwargs)


def _confidence(scores, tokens) -> float:
    import torch

    if not scores:
        return 0.0
    logprobs = [torch.log_softmax(score[0].float(), dim=-1)[token].item() for score, token in zip(scores, tokens)]
    return float(np.exp(np.mean(logprobs)))


def _strip_chat_tokens(text: str) -> str:
    for token in ("<|im_end|>", "<|endoftext|>", "<|im_start|>"):
        text = text.replace(token, "")
    return text.strip()


PUNCTUATION = "\"'.,;:!?()[]{}"


def _clean(text: str, question: bool = False) -> str:
    """A query as safe prompt text: valid UTF-8, no chat control tokens, bounded length, single spaces,
    plain words in lower case (a question in sentence case) as models are asked: "The Bottle" and "the
    bottle" got different answers. Names with digits or dots ("Cube.003") are kept as written."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = text.encode("utf-8", errors="replace").decode("utf-8")  # lone surrogates from undecodable argv
    words = text.replace("<|", "< |").replace("|>", "| >").split()
    if not words:
        raise ModelError("the query is empty")
    words = [w.lower() if w.strip(PUNCTUATION).isalpha() else w for w in words]
    if question:
        words[0] = words[0][:1].upper() + words[0][1:]
    return " ".join(words)[:500]
