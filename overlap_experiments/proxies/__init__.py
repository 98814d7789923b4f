"""Cheaper proxies of overlap (paper appendix A.2): the measures (:mod:`.measures`, Eqs. 7–8) and
the ``proxies`` subcommand that computes them on 16×16 MNIST (:mod:`.study`, Figs. 6–7)."""
from .measures import ggn_diagonal, h2_diagonal, magnitude_order, normalized_subtrace, proxy_curves, sam_deltas

__all__ = ["magnitude_order", "ggn_diagonal", "h2_diagonal", "sam_deltas", "normalized_subtrace", "proxy_curves"]
