"""Tiny random-weight models of the real architectures, saved with save_pretrained, so tests and
offline machines run the whole pipeline through the same from_pretrained path real checkpoints
use. Random weights give meaningless answers; structure, shapes and code paths are real.
"""

from __future__ import annotations

from pathlib import Path

# Qwen's chat special tokens (ids in this order, first in the vocabulary).
QWEN_SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
# The paper's reasoning tags: single tokens, but ordinary text. Decoding with
# skip_special_tokens (as trl does for rewards) must keep them.
REASONING_TAGS = ["<think>", "</think>", "<answer>", "</answer>"]

# Qwen2.5-VL's chat template (the structure of the published one): a default system turn,
# vision placeholders inside user content, and the assistant turn opened for generation.
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Text the tokenizer learns its merges from: the prompts and answers the pipeline exchanges.
TOKENIZER_CORPUS = [
    "<think>The mug is on the table next to the laptop.</think><answer>3.5s to 7s</answer>",
    '<answer>{"bbox_2d": [120, 45, 310, 260], "label": "chair"}</answer>',
    "When in this video is the red chair left of the table best seen? Answer with a time span in seconds.",
    "How many chairs are there? What colour is the cube? Is there a sphere on the cabinet?",
    "0 1 2 3 4 5 6 7 8 9 10 100 1000 yes no left right above below near far small large",
]


def make_tiny_tokenizer(vocab_size: int = 512, corpus: list[str] | None = None):
    """A byte-level BPE tokenizer trained on the fly, carrying Qwen's special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=QWEN_SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(TOKENIZER_CORPUS * 4 + list(corpus or []), trainer)
    tokenizer.add_tokens(REASONING_TAGS)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=QWEN_SPECIAL_TOKENS[1:],
        chat_template=QWEN_CHAT_TEMPLATE,
    )
    wrapped.padding_side = "left"  # generation pads on the left
    return wrapped


def _qwen_config(vocab: int, ids: dict, hidden: int, layers: int, vision_hidden: int, vision_depth: int) -> dict:
    """Qwen2_5_VLConfig's arguments for a small model (4 heads, 2 key-value heads, Qwen's special ids)."""
    heads = 4
    head_dim = hidden // heads
    quarter = head_dim // 4
    return dict(
        text_config=dict(
            vocab_size=vocab,
            hidden_size=hidden,
            intermediate_size=2 * hidden,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=2,
            max_position_embeddings=4096,
            rope_parameters={
                "rope_type": "default",
                "rope_theta": 10000.0,
                "mrope_section": [head_dim // 2 - 2 * quarter, quarter, quarter],
            },
            bos_token_id=ids["<|endoftext|>"],
            eos_token_id=ids["<|im_end|>"],
            pad_token_id=ids["<|endoftext|>"],
        ),
        vision_config=dict(
            depth=vision_depth,
            hidden_size=vision_hidden,
            intermediate_size=2 * vision_hidden,
            num_heads=2,
            out_hidden_size=hidden,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            window_size=112,
            fullatt_block_indexes=[vision_depth - 1],
            tokens_per_second=2,
        ),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )


def make_tiny_qwen2_5_vl(
    out,
    hidden: int = 64,
    layers: int = 2,
    max_pixels: int = 56 * 56 * 4,
    seed: int = 0,
    vision_hidden: int = 32,
    vision_depth: int = 2,
    vocab_size: int = 512,
    corpus: list[str] | None = None,
):
    """Qwen2_5_VLForConditionalGeneration + Qwen2_5_VLProcessor, random weights, saved to `out`."""
    import torch
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    torch.manual_seed(seed)
    tokenizer = make_tiny_tokenizer(vocab_size, corpus)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}
    config = Qwen2_5_VLConfig(**_qwen_config(len(tokenizer), ids, hidden, layers, vision_hidden, vision_depth))
    model = Qwen2_5_VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    # Few pixels per image keeps CPU tests fast; real checkpoints carry their own processor settings.
    pixels = {"shortest_edge": 28 * 28 * 4, "longest_edge": max_pixels}
    processor = Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(size=pixels),
        video_processor=Qwen2VLVideoProcessor(size=pixels, fps=2.0, do_sample_frames=False),
        tokenizer=tokenizer,
        chat_template=QWEN_CHAT_TEMPLATE,
    )
    out = Path(out)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def make_recipe_model(out, recipe, corpus: list[str]) -> Path:
    """The untrained model of a training recipe's shape (its hidden, layers, vision_hidden, vision_depth,
    vocab_size and seed), the tokenizer learned from `corpus`; kept when `out` already holds one."""
    out = Path(out)
    if (out / "config.json").exists():
        return out
    shape = ("hidden", "layers", "vision_hidden", "vision_depth", "vocab_size", "seed")
    return make_tiny_qwen2_5_vl(out, corpus=corpus, **{name: getattr(recipe, name) for name in shape})


def make_tiny_sam2_video(out, image_size: int = 256, seed: int = 0):
    """transformers' Sam2VideoModel + Sam2VideoProcessor at a small image size, random weights."""
    import torch
    from transformers import (
        Sam2ImageProcessor,
        Sam2VideoConfig,
        Sam2VideoModel,
        Sam2VideoProcessor,
        Sam2VideoVideoProcessor,
    )

    torch.manual_seed(seed)
    config = Sam2VideoConfig()
    # Set as attributes: nested dicts in the constructor are not merged with the defaults.
    config.image_size = image_size
    config.prompt_encoder_config.image_size = image_size
    config.memory_attention_rope_feat_sizes = [image_size // 16, image_size // 16]
    backbone = config.vision_config.backbone_config
    backbone.image_size = [image_size, image_size]
    backbone.hidden_size = 16
    backbone.blocks_per_stage = [1, 1, 2, 1]  # a global-attention block cannot be a stage's first (query-pooling) one
    backbone.embed_dim_per_stage = [16, 32, 64, 128]
    backbone.num_attention_heads_per_stage = [1, 1, 2, 2]
    backbone.global_attention_blocks = [3]
    config.vision_config.backbone_channel_list = [128, 64, 32, 16]
    config.mask_decoder_config.mlp_dim = 256
    config.memory_attention_num_layers = 1
    config.memory_attention_feed_forward_hidden_size = 256
    config.memory_fuser_num_layers = 1
    config.memory_fuser_intermediate_dim = 256
    config.vision_config.backbone_feature_sizes = [[image_size // 4] * 2, [image_size // 8] * 2, [image_size // 16] * 2]
    model = Sam2VideoModel(config)
    size = {"height": image_size, "width": image_size}
    processor = Sam2VideoProcessor(
        image_processor=Sam2ImageProcessor(size=size, mask_size={"height": image_size // 4, "width": image_size // 4}),
        video_processor=Sam2VideoVideoProcessor(size=size),
        target_size=image_size,
        point_pad_value=-10,
    )
    out = Path(out)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def make_tiny_models(out) -> dict[str, Path]:
    """`scene-r1 make-tiny-models --out DIR`: DIR/qwen2_5_vl and DIR/sam2_video."""
    out = Path(out)
    return {"vlm": make_tiny_qwen2_5_vl(out / "qwen2_5_vl"), "tracker": make_tiny_sam2_video(out / "sam2_video")}
