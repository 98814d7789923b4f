"""overlap_experiments: the paper's experiments built on sketchla's public API."""
