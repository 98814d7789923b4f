"""``python -m overlap_experiments.synthetic --out DIR``: the synthetic study on its own."""
from .command import main

raise SystemExit(main())
