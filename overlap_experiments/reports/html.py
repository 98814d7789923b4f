"""``report.html``: one self-contained page of an output folder (``overlap-experiments report DIR``).

Written at the end of every ``run``, ``proxies`` and ``synthetic`` and by
``report DIR``, from the files those wrote (nothing is recomputed). One file,
no external assets: every figure is embedded as a base64 PNG. For each kind
of results in the folder (:func:`.key_numbers.sections`) it shows

* the parameters of the run (the ``config`` record, or the study's settings);
* the key numbers beside the paper's (:func:`.key_numbers.numbers`); each
  value cell carries ``data-key`` and ``data-value`` (the unrounded number);
* every figure with its caption (the figure modules' ``FIGURES``);
* the timings: seconds spent in the invocation that wrote the file, and for
  a resumed run the recorded seconds of the analyses it took from the cache;

then the disk use of the folder, part by part, with what deleting each part
costs (:mod:`overlap_experiments.outputs`). Figures in the folder that no
section claims are shown at the end, so the page holds every ``fig*.png``.
"""
from __future__ import annotations

import base64
import datetime as _dt
import html as _html
import logging
from pathlib import Path

from .. import outputs
from ..figures import comparison, proxies, sketch_only, synthetic
from ..progress import format_seconds
from .key_numbers import Section, format_value, numbers, paper_column, sections

logger = logging.getLogger(__name__)

__all__ = ["write_report", "render", "CAPTIONS", "REPORT_NAME"]

#: the file written into the folder
REPORT_NAME = "report.html"
#: figure file name -> caption, every family
CAPTIONS = {**comparison.FIGURES, **sketch_only.FIGURES, **proxies.FIGURES, **synthetic.FIGURES}
#: which figures belong to which kind of results
_FAMILY = {"run": {**comparison.FIGURES, **sketch_only.FIGURES}, "proxies": proxies.FIGURES,
           "synthetic": synthetic.FIGURES}

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
h1 { font-size: 1.5rem; } h2 { border-bottom: 1px solid #ccc; margin-top: 2.5rem; } h3 { margin-top: 1.5rem; }
table { border-collapse: collapse; margin: 0.5rem 0; font-size: 0.9rem; }
td, th { border: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
figure { margin: 1.5rem 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.9rem; color: #444; max-width: 60rem; }
.banner { background: #fff3cd; border: 1px solid #e0c060; padding: 0.5rem 1rem; }
code { background: #f4f4f4; padding: 0 0.2rem; }
"""


def write_report(folder) -> Path:
    """Write ``folder/report.html`` (module docstring) and return its path."""
    folder = Path(folder)
    path = folder / REPORT_NAME
    tmp = path.with_suffix(".tmp")
    tmp.write_text(render(folder), encoding="utf-8")
    tmp.replace(path)
    logger.info("wrote %s", path)
    return path


def render(folder) -> str:
    """The HTML text of the report of ``folder``."""
    folder = Path(folder)
    found = sections(folder)
    esc = _html.escape
    parts = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>overlap-experiments report: {esc(folder.name)}</title>", f"<style>{_CSS}</style></head><body>",
             f"<h1>overlap-experiments report: <code>{esc(str(folder))}</code></h1>",
             f"<p>Written {_dt.datetime.now().isoformat(timespec='seconds')} from the files in this folder "
             "(redraw with <code>overlap-experiments report DIR</code>). Paper: Fernandez et al., <i>Connecting "
             "Parameter Magnitudes and Hessian Eigenspaces at Scale using Sketched Methods</i>.</p>"]
    if not found:
        parts.append("<p>No results.json or proxies.json in this folder.</p>")
    shown: set[str] = set()
    for sec in found:
        parts.append(_section(sec, folder, shown))
    rest = sorted(p.name for p in folder.glob("fig*.png") if p.name not in shown)
    if rest:
        parts.append("<h2>Other figures in this folder</h2>")
        parts += [_figure(folder / name, CAPTIONS.get(name, "")) for name in rest]
    parts.append(_disk(folder))
    parts.append("</body></html>")
    return "\n".join(parts)


def _section(sec: Section, folder: Path, shown: set) -> str:
    esc = _html.escape
    out = [f'<h2 id="{sec.kind}">{esc(sec.title)}</h2>']
    if sec.doc.get("synthetic"):
        out.append('<p class="banner">SYNTHETIC data: generated images, not the data set — the numbers test the '
                   "pipeline, not the paper's claims.</p>")
    out.append(f"<p>From <code>{esc(sec.path.name)}</code>, seed {esc(str(sec.seed))}.</p>")
    out.append("<h3>Parameters</h3>" + _table(_parameters(sec)))
    found = numbers(sec, folder)
    rows = [(esc(n.what), f'<td class="num" data-key="{esc(n.key)}" '
             f'data-value="{"" if n.value is None else repr(float(n.value))}">'
             f"{esc(format_value(n.value, n.fmt))}</td>", esc(paper)) for n, paper in zip(found, paper_column(found))]
    out.append("<h3>Key numbers beside the paper's</h3><table><tr><th>quantity</th><th>this run</th>"
               "<th>paper</th></tr>" + "".join(f"<tr><td>{w}</td>{v}<td>{p}</td></tr>" for w, v, p in rows)
               + "</table>")
    figs = [name for name in _FAMILY[sec.kind] if (folder / name).is_file()]
    if figs:
        out.append("<h3>Figures</h3>")
        for name in figs:
            out.append(_figure(folder / name, _FAMILY[sec.kind][name]))
            shown.add(name)
    out.append("<h3>Timings</h3>" + _timings(sec))
    return "\n".join(out)


def _parameters(sec: Section) -> list[tuple[str, str]]:
    doc = sec.doc
    if sec.kind == "run":
        items = dict(doc.get("config", {}))
        items["data"] = doc.get("data_source", {}).get("description") or doc.get("data_source", {}).get("name")
        items["D (parameters)"] = f"{doc['n_params']:,}"
    elif sec.kind == "proxies":
        items = {k: doc.get(k) for k in ("seed", "steps", "splits", "lams", "hessian_samples_per_class",
                                        "k_max_overlap", "eigensolver", "quick")}
        items["data"] = doc.get("data_source", {}).get("description")
    else:
        items = {k: doc.get(k) for k in ("seed", "samples", "modalities", "k_rule", "normalization", "quick",
                                        "sketchla_version")}
        items.update({f"grid: {k}": v for k, v in doc.get("grid", {}).items()})
    return [(k, _short(v)) for k, v in items.items()]


def _short(v) -> str:
    if isinstance(v, (list, tuple)) and len(v) > 12:
        return f"{', '.join(map(str, v[:6]))}, …, {', '.join(map(str, v[-3:]))} ({len(v)} values)"
    if isinstance(v, (list, tuple)):
        return ", ".join(map(str, v))
    if isinstance(v, dict):
        return ", ".join(f"{k}: {x}" for k, x in v.items())
    return str(v)


def _table(rows, head=("setting", "value")) -> str:
    esc = _html.escape
    return (f"<table><tr>{''.join(f'<th>{esc(h)}</th>' for h in head)}</tr>"
            + "".join("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in r) + "</tr>" for r in rows) + "</table>")


def _timings(sec: Section) -> str:
    doc = sec.doc
    if sec.kind == "synthetic":
        return _table([("study (Dask compute)", format_seconds(doc.get("elapsed_s", 0.0)))], ("stage", "seconds"))
    t = doc.get("timings", {})
    r = doc.get("timings_reused", {})
    rows = []
    for k, v in t.items():
        if isinstance(v, (int, float)) and not k.startswith(("hvp_", "per_hvp")):
            rows.append((k, format_seconds(v), format_seconds(r[k]) if r.get(k) else ""))
    note = ""
    if r.get("analyses"):
        note = (f"<p>Resumed run: {r['analyses']} analyses came from the cache; the last column is the time they "
                "took when an earlier invocation computed them (not spent now).</p>")
    return note + _table(rows, ("stage", "this invocation", "reused from the cache (spent earlier)"))


def _figure(path: Path, text: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    esc = _html.escape
    return (f'<figure id="{esc(path.stem)}"><img src="data:image/png;base64,{data}" alt="{esc(path.name)}">'
            f"<figcaption><b>{esc(path.name)}</b> — {esc(text)}</figcaption></figure>")


def _disk(folder: Path) -> str:
    use = outputs.disk_use(folder)
    rows = [(name, outputs.format_bytes(b), outputs.PARTS.get(name, "results, figures, this report"))
            for name, b in sorted(use["parts"].items(), key=lambda kv: -kv[1])]
    rows.append(("total", outputs.format_bytes(use["total"]), ""))
    return "<h2 id=\"disk\">Disk use of this folder</h2>" + _table(rows, ("part", "size", "what; deleting it"))
