"""The training set: synthetic scene folders (gt.json) or a ScanNet folder with its language
annotations, detected by layout, streamed into a Hugging Face Dataset."""

from __future__ import annotations

from collections.abc import Iterator

from .records import RecordSettings, records, task_list
from .scannet import is_scannet_dataset, scannet_dataset_records


def dataset_records(data, task: str, settings: RecordSettings = RecordSettings()) -> Iterator[dict]:
    if is_scannet_dataset(data):
        yield from scannet_dataset_records(data, task, settings)
    else:
        yield from records(data, task, settings)


def as_dataset(data, task: str, settings: RecordSettings = RecordSettings()):
    """A Hugging Face Dataset streamed through its Arrow cache (images stored, not held)."""
    from datasets import Dataset

    task_list(task)  # a bad task name is the caller's error, not a dataset-generation failure
    return Dataset.from_generator(dataset_records, gen_kwargs={"data": str(data), "task": task, "settings": settings})
