"""Exports of results and labellings: objects as GLB / USDZ, ScanNet's annotation files, COCO JSON."""

from .bundle import FORMATS, LabelledObject, export_scan, labelled_objects, read_result

__all__ = ["FORMATS", "LabelledObject", "export_scan", "labelled_objects", "read_result"]
