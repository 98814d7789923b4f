"""The bounded fan-in reduction tree of TSQR (Demmel et al. 2012, "communication-avoiding QR").

Leaves are the row blocks' R factors. Each tree node stacks the R factors of
at most ``fanin`` children and QR-factorises the stack; its R goes one level
up. ``fanin`` is chosen so that a node's stack (``fanin · n`` rows) is no
taller than a row block, so no node ever gathers more than about one block of
numbers — however many blocks there are, the tree just gets deeper.

The downward pass turns the tree's Q factors into one small factor per leaf:
for a node with Q-factor ``Q_v`` (h_v×k_v) and incoming factor ``S_v``
(k_v×n; the identity-with-signs at the root), child ``c`` occupying rows
``o_c:o_c+k_c`` of the stack gets ``S_c = (Q_v S_v)[o_c:o_c+k_c]``. The
final Q of block i is ``Q_i S_i`` with ``Q_i`` the block's local Q factor.
"""
from __future__ import annotations

import dask

from ._kernels import node_qr, node_r


def tree_fanin(n_cols: int, block_rows: int, fanin: int | None = None) -> int:
    """Fan-in so that a node's stack ``fanin · n_cols`` rows fits in about one block (≥ 2)."""
    if fanin is not None:
        if isinstance(fanin, bool) or not isinstance(fanin, int) or fanin < 2:
            raise ValueError(f"fanin must be an int >= 2, got {fanin!r}")
        return fanin
    return max(2, int(block_rows) // max(int(n_cols), 1))


def reduction_tree(n_leaves: int, fanin: int) -> list[list[tuple[int, ...]]]:
    """Groups of the reduction tree, level by level, bottom up.

    ``levels[0]`` groups leaf indices, ``levels[j]`` groups the nodes of level
    ``j-1``; every group has at most ``fanin`` members and the last level is a
    single root group. There is always at least one level (the root), even
    for a single leaf, so the sign convention is applied in one place.
    """
    if n_leaves < 1:
        raise ValueError("n_leaves must be >= 1")
    if fanin < 2:
        raise ValueError("fanin must be >= 2")
    levels = []
    width = n_leaves
    while True:
        groups = [tuple(range(s, min(s + fanin, width))) for s in range(0, width, fanin)]
        levels.append(groups)
        if len(groups) == 1:
            return levels
        width = len(groups)


def _slice_rows(s, start, stop):
    return s[start:stop]


def _matmul(q, s):
    return q @ s


def build_tree(leaf_rs, heights, n_cols, fanin, prefix, *, want_q: bool):
    """Delayed reduction over ``leaf_rs`` (Delayed R factors with static ``heights``).

    Returns ``(root_r, leaf_factors)``: the Delayed root R (n×n, diag ≥ 0)
    and, if ``want_q``, one Delayed ``S_i`` per leaf (k_i×n) such that stacking
    ``Q_i S_i`` over the blocks gives the orthonormal Q; else ``None``.
    """
    levels = reduction_tree(len(leaf_rs), fanin)
    cur, cur_h = list(leaf_rs), list(heights)
    node_qs = []  # per level: list of Delayed Q factors
    for li, groups in enumerate(levels):
        root = li == len(levels) - 1
        nxt, nxt_h, qs = [], [], []
        for gi, group in enumerate(groups):
            key = f"{prefix}-node-{li}-{gi}"
            members = [cur[c] for c in group]
            h = sum(cur_h[c] for c in group)
            if want_q:
                q, r = dask.delayed(node_qr, nout=2, pure=True)(
                    *members, root=root, dask_key_name=key)
                qs.append(q)
            else:
                r = dask.delayed(node_r, pure=True)(*members, root=root, dask_key_name=key)
            nxt.append(r)
            nxt_h.append(min(h, n_cols))
        node_qs.append(qs)
        cur, cur_h_prev, cur_h = nxt, cur_h, nxt_h
        levels[li] = (groups, cur_h_prev)
    root_r = cur[0]
    if not want_q:
        return root_r, None

    # downward pass: S for each node of the level above, then slices for the children
    s_nodes = [node_qs[-1][0]]  # root: Q_root (already sign-fixed), rows of its stack
    for li in range(len(levels) - 1, -1, -1):
        groups, child_h = levels[li]
        child_s = [None] * len(child_h)
        for gi, group in enumerate(groups):
            off = 0
            for c in group:
                k = child_h[c]
                part = dask.delayed(_slice_rows, pure=True)(
                    s_nodes[gi], off, off + k, dask_key_name=f"{prefix}-slice-{li}-{c}")
                off += k
                if li == 0:
                    child_s[c] = part
                else:
                    child_s[c] = dask.delayed(_matmul, pure=True)(
                        node_qs[li - 1][c], part, dask_key_name=f"{prefix}-down-{li}-{c}")
        s_nodes = child_s
    return root_r, s_nodes
