"""Scene -> temporal grounding -> image grounding -> tracking -> lifting, and 3D VQA."""
