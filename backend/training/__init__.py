"""Training (GRPO from 2D boxes and text, SFT warm start), datasets, rewards and evaluation."""
