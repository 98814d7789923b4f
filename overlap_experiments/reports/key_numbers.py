"""The key numbers of an output folder, each beside what the paper says: what ``report.html`` and the README show.

A folder holds up to three kinds of results, each read from the file its
subcommand wrote (never recomputed):

* ``run``: ``results.json`` of ``run PROBLEM`` — with exact Hessians
  (mnist16, paper §6.1) or sketch-only (§6.2);
* ``proxies``: ``proxies.json`` (appendix A.2);
* ``synthetic``: ``results.json`` of the synthetic study (Alg. 3, Table 2).

:func:`sections` finds them; :func:`numbers` gives each one's
:class:`Number` list. A number's ``key`` is stable across runs of the same
settings, so several runs (seeds) can be set side by side with their spread
(:mod:`.readme`). The paper's side comes from :mod:`overlap_experiments.paper_values`
and the problems' Table 1 rows; where the paper only shows a plot, ``paper``
quotes what it says about it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import outputs
from ..paper_values import FIG1_K, PAPER_CLAIMS, PAPER_TABLE2, TABLE2_RHOS
from ..progress import format_seconds

__all__ = ["Number", "Section", "sections", "numbers", "format_value", "paper_column", "SECTION_FILES", "DITTO"]

#: the file each kind of results is read from
SECTION_FILES = {"run": "results.json", "proxies": "proxies.json", "synthetic": "results.json"}


@dataclass(frozen=True)
class Number:
    """One key number: ``key`` (stable across runs), ``what`` (in words), ``value`` (``None``: not
    computed), ``fmt`` (a format spec, or ``"s"`` seconds, ``"bytes"``), ``paper`` (the paper's
    value or statement; ``""``: the paper has none)."""

    key: str
    what: str
    value: float | None
    fmt: str
    paper: str = ""


@dataclass(frozen=True)
class Section:
    """One kind of results in a folder: ``kind`` ("run", "proxies", "synthetic"), ``title``, the
    parsed file ``doc``, its ``path``, and ``group``: runs with the same group differ only by seed."""

    kind: str
    title: str
    doc: dict
    path: Path
    group: str

    @property
    def seed(self):
        return self.doc.get("seed", self.doc.get("config", {}).get("seed"))


def format_value(value, fmt: str) -> str:
    """``value`` as the report shows it (``"–"`` for ``None``)."""
    if value is None:
        return "–"
    if fmt == "s":
        return format_seconds(value)
    if fmt == "bytes":
        return outputs.format_bytes(value)
    return format(value, fmt)


#: the paper column of a row that says what the row above says
DITTO = "″"


def paper_column(rows: list[Number]) -> list[str]:
    """The paper's side of each row, :data:`DITTO` where it repeats the row above."""
    out, previous = [], None
    for n in rows:
        out.append(DITTO if n.paper and n.paper == previous else n.paper)
        previous = n.paper
    return out


def sections(folder) -> list[Section]:
    """The results found in ``folder``: a run, proxies, a synthetic study (in that order)."""
    folder = Path(folder)
    found = []
    res_path = folder / "results.json"
    if res_path.is_file():
        doc = json.loads(res_path.read_text())
        if str(doc.get("experiment", "")).startswith("synthetic"):
            quick = " (quick grid)" if doc.get("quick") else ""
            found.append(Section("synthetic", f"Synthetic Grassmannian study (paper Alg. 3, Table 2){quick}", doc,
                                 res_path, f"synthetic{quick}"))
        elif "problem" in doc and "overlap" in doc:
            p = doc["problem"]
            tags = [t for t in ("SYNTHETIC data" if doc.get("synthetic") else "",
                                "quick run" if doc.get("config", {}).get("quick") else "") if t]
            extra = f" ({', '.join(tags)})" if tags else ""
            found.append(Section("run", f"run {p['name']}: {p['title']}, {p['model_name']}{extra}", doc, res_path,
                                 f"run {p['name']}{extra}"))
    prox = folder / "proxies.json"
    if prox.is_file():
        doc = json.loads(prox.read_text())
        quick = " (quick run)" if doc.get("quick") else ""
        found.append(Section("proxies", f"proxies: overlap proxies on {doc['problem']['title']} (paper App. A.2)"
                             f"{quick}", doc, prox, f"proxies{quick}"))
    return found


def numbers(section: Section, folder=None) -> list[Number]:
    """The key numbers of ``section``; with ``folder``, also the disk use of the folder (runs)."""
    doc = section.doc
    if section.kind == "synthetic":
        return _synthetic(doc)
    if section.kind == "proxies":
        return _proxies(doc)
    out = _comparison(doc) if any("exact" in it for by in doc["overlap"].values() for it in by.values()) \
        else _sketch_only(doc)
    resumed = doc.get("timings_reused", {}).get("analyses")
    out.append(Number("run_seconds", "time of the invocation that wrote results.json"
                      + (f" (resumed: {resumed} analyses from the cache)" if resumed else ""),
                      doc.get("timings", {}).get("total"), "s"))
    if folder is not None:
        use = outputs.disk_use(folder)
        out.append(Number("disk_total", "disk use of the output folder", use["total"], "bytes"))
        if "seigh" in use["parts"]:
            out.append(Number("disk_seigh", "… of which SEIGH run stores (seigh/, deletable: clean)",
                              use["parts"]["seigh"], "bytes"))
    return out


def _last(doc) -> int:
    return max(int(s) for s in doc["checkpoints"])


def _fig1_k(doc) -> int:
    """The k of Fig. 1 (left) for this run: the paper's, or the largest every curve reaches."""
    lengths = [len(it[kind]) for by in doc["overlap"].values() for it in by.values()
               for kind in ("exact", "sketched") if it.get(kind)]
    return min([FIG1_K] + lengths)


def _comparison(doc) -> list[Number]:
    """A run with exact Hessians (mnist16, paper §6.1)."""
    p, last = doc["problem"], _last(doc)
    ck = doc["checkpoints"][str(last)]
    paper_acc = f"{p['paper_accuracy']:.2%} at step {p['total_steps']} (Table 1, MNIST)"
    out = [Number(f"test_acc@{last}", f"test accuracy at step {last}", ck.get("test_acc"), ".1%", paper_acc),
           Number(f"train_acc@{last}", f"train accuracy at step {last}", ck.get("train_acc"), ".1%")]
    k, D = _fig1_k(doc), doc["n_params"]
    for split, by in doc["overlap"].items():
        for s in sorted(by, key=int):
            it = by[s]
            if not it.get("exact"):
                continue
            ex, skd = it["exact"][k - 1], (it.get("sketched") or [None] * k)[k - 1]
            out += [Number(f"overlap_exact@{split}/{s}/k{k}", f"overlap, exact H_{split}, step {s}, k = {k}", ex,
                           "#.3g", PAPER_CLAIMS["overlap_exact"]),
                    Number(f"overlap_sketched@{split}/{s}/k{k}", f"overlap, sketched H_{split}, step {s}, k = {k}",
                           skd, "#.3g", PAPER_CLAIMS["overlap_sketched"]),
                    Number(f"ratio_exact@{split}/{s}/k{k}", f"exact overlap / chance k/D, H_{split}, step {s}",
                           ex / (k / D), ".2f")]
    diffs = [it["abs_diff_exact_sketched_max"] for by in doc["overlap"].values() for it in by.values()
             if "abs_diff_exact_sketched_max" in it]
    if diffs:
        out.append(Number("max_abs_exact_minus_sketched", "max |exact − sketched| overlap, every k ≤ n_O and step",
                          max(diffs), ".4f", PAPER_CLAIMS["exact_vs_sketched"]))
    small = [(split, by[str(last)]) for split, by in doc["overlap"].items()
             if str(last) in by and by[str(last)].get("exact") and len(by[str(last)]["exact"]) >= 10]
    for split, it in small[:1]:
        out.append(Number(f"ratio_exact@{split}/{last}/k10", f"exact overlap / chance at k = 10, H_{split}, "
                          f"step {last}", it["exact"][9] / (10 / D), ".2f"))
    items = [it for by in doc["overlap"].values() for it in by.values()]
    hvp = [it["seconds_sketched"]["per_hvp"] for it in items if it.get("seconds_sketched", {}).get("per_hvp")]
    eigh = [it["seconds_exact"]["eigh"] for it in items if it.get("seconds_exact")]
    seigh = [it["seconds_sketched"]["total"] for it in items if it.get("seconds_sketched")]
    out += [Number("hvp_seconds", "seconds per Hessian-vector product (median, SEIGH)",
                   float(np.median(hvp)) if hvp else None, ".3g"),
            Number("seigh_seconds", "one SEIGH (median over Hessians)", float(np.median(seigh)) if seigh else None,
                   "s"),
            Number("eigh_seconds", "one dense eigendecomposition (mean)", float(np.mean(eigh)) if eigh else None,
                   "s")]
    return out


def _sketch_only(doc) -> list[Number]:
    """A run of the §6.2 problems (sketched only)."""
    p, last = doc["problem"], _last(doc)
    out = []
    for split in doc["overlap"]:
        acc = doc["checkpoints"][str(last)].get(f"{split}_sample_acc")
        out.append(Number(f"{split}_sample_acc@{last}", f"accuracy on the H_{split} sample, step {last}", acc, ".1%",
                          f"{p['paper_accuracy']:.2%} test accuracy at step {p['total_steps']} (Table 1)"
                          if split == "test" else ""))
    big = PAPER_CLAIMS["ratio_resnet" if p["name"].startswith("imagenet") else "ratio_large"]
    for split, by in doc["overlap"].items():
        e = by.get(str(last))
        if e is None:
            continue
        n = len(e["ratio"])
        for k in sorted({k for k in (1, 10, 100, 1000) if k <= n} | {n}):
            out.append(Number(f"ratio@{split}/{last}/k{k}", f"overlap / chance, H_{split}, step {last}, k = {k}",
                              e["ratio"][k - 1], ".3g", big))
    hvp = [e["timings"]["per_hvp"] for by in doc["overlap"].values() for e in by.values() if e["timings"]["per_hvp"]]
    out.append(Number("hvp_seconds", "seconds per Hessian-vector product (median)",
                      float(np.median(hvp)) if hvp else None, ".3g"))
    return out


def _proxies(doc) -> list[Number]:
    """Proxies at k ≈ 1 % of D, as multiples of chance k/D (paper App. A.2)."""
    out = []
    for split, by in doc["summary"].items():
        for s in sorted(by, key=int):
            k = min(by[s], key=int)  # the smallest k of the summary: ~1 % of D
            for name, v in by[s][k].items():
                out.append(Number(f"{name}@{split}/{s}/k{k}", f"{name} / chance, H_{split}, step {s}, k = {k}",
                                  v["ratio_to_k_over_D"], ".2f", PAPER_CLAIMS["proxies"] if name != "overlap" else ""))
    out.append(Number("proxies_seconds", "time of the proxies run", doc.get("timings", {}).get("total"), "s"))
    return out


def _synthetic(doc) -> list[Number]:
    """Table 2: O–O means at D = table_d, beside the paper's (D = 2048)."""
    tab = doc["table2"].get("O-O") or next(iter(doc["table2"].values()))
    same_d = tab["d"] == 2048 and tab["modality"] == "O-O"
    out = []
    for metric, vals in tab["rows"].items():
        for r, v in zip(tab["rhos"], vals):
            paper = ""
            if metric in PAPER_TABLE2 and r in TABLE2_RHOS and tab["modality"] == "O-O":
                pv = PAPER_TABLE2[metric][TABLE2_RHOS.index(r)]
                paper = f"{pv:.5f}" + ("" if same_d else " (D = 2048)")
            out.append(Number(f"table2/{tab['modality']}/{metric}/{r:g}",
                              f"{metric}, ρ = {r:g} ({tab['modality']} mean, D = {tab['d']})", v, ".5f", paper))
    out.append(Number("synthetic_seconds", "time of the study", doc.get("elapsed_s"), "s"))
    return out
