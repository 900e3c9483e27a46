"""Geometry on RGB-D frames: frame selection, lifting, tracking, fusion."""
