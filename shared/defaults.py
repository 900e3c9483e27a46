"""Defaults both sides agree on, written once: where the backend listens, which models a user gets
when they name none, and how long a client waits."""

DEFAULT_ADDRESS = "tcp://127.0.0.1:5555"
DEFAULT_BROKER_BACKEND = "tcp://127.0.0.1:5556"  # where a broker's workers connect
DEFAULT_VLM = "Qwen/Qwen2.5-VL-7B-Instruct"  # the paper's model (Scene-R1 fine-tunes Qwen2.5-VL-7B)
DEFAULT_TRACKER = "facebook/sam2.1-hiera-tiny"
DEFAULT_TIMEOUT_S = 30.0  # seconds a client waits without any word from the backend (progress counts)
