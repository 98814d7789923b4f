"""overlap_experiments: the paper's experiments built on sketchla's public API.

One pipeline (:mod:`.pipeline`) for the four problems of paper Table 1
(:mod:`.problems`), the synthetic Grassmannian study (:mod:`.synthetic`) and
the overlap proxies (:mod:`.proxies`); the command is :mod:`.cli`. The map of
the package is ``docs/ARCHITECTURE.md` (section "overlap_experiments")`.
"""
