"""Benchmarks that live in the source checkout only (never in the wheel): `scene-r1 bench gpu`."""
