"""Every figure of the paper that the experiments draw, one module per family.

* :mod:`.comparison` — a run with exact Hessians, exact vs sketched (paper §6.1:
  Fig. 1 left, Figs. 14–17, overlap/chance vs k);
* :mod:`.sketch_only` — a sketch-only run (paper §6.2: Figs. 3 and 4);
* :mod:`.proxies` — the overlap proxies (appendix A.2: Figs. 6 and 7);
* :mod:`.synthetic` — the synthetic Grassmannian study (Fig. 2, Figs. 8–13);
* :mod:`.style` — what they share.

Every family draws from the numbers the run wrote (``results.json``,
``proxies.json``, a synthetic result), so figures can be redrawn without
recomputing.
"""
