"""What SEIGH's streamed passes pay per sketch besides arithmetic: test-matrix
generation per kind, and the run store's chunk encoding (issue 5's overhead).

Table 1: generating a ``rows × n`` float32 block of a :class:`sketchla.random.TestMatrix`
(whole row tiles, as the thin products do), best of ``--repeats``, per kind,
as a ratio to ``"gaussian"`` in the same run.

Table 2: a ``D × n`` float32 Gaussian sketch written in column chunks of
``--chunk`` columns × ``2**15`` rows (as ``sketchla.measure`` writes it) and
read back in full, with the store's former codecs (Zstandard level 0 plus
CRC-32C, Zarr's default of comparing each chunk with the fill value before
writing it), with CRC-32C only but the comparison kept, and with the current
ones (CRC-32C only, every chunk written); times best of ``--repeats`` and as
ratios to the former, bytes on disk too (Zarr pads the last row chunk to full
height; uncompressed, that padding is stored).

Table 3: that current store read back in row bands of ``2**15`` rows across all
columns (how TSQR, the thin products and ``Q U`` stream a sketch) through Zarr's
``array[r0:r1, :]`` and through :func:`sketchla.store.fastread.read_region`
(the chunk files read directly, CRC-32C checked), best of ``--repeats``, as a
ratio to Zarr in the same run.

    python benchmarks/sketch_io.py            # D = 134,154, n = 256 (SEIGH's overhead setting)
    python benchmarks/sketch_io.py --quick    # D = 20,000, n = 64
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import zarr
from zarr.codecs import Crc32cCodec, ZstdCodec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import best_seconds, write_report  # noqa: E402

from sketchla.random import KINDS, TILE_ROWS, TestMatrix  # noqa: E402
from sketchla.store import RunStore, write_every_chunk  # noqa: E402
from sketchla.store.fastread import _layout, read_region  # noqa: E402

ROWS = 2**15


def _disk_bytes(path: str) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def _store_codecs(d: str) -> tuple:
    """The codecs the run store gives its arrays (read off an array it makes)."""
    run = RunStore.open(os.path.join(d, "probe.zarr"), {"seed": 0})
    return tuple(run.array("Y", (1, 1), chunks=(1, 1), dtype="float32").compressors)


def _store_row(name, path, Y, compressors, every_chunk, chunk, repeats):
    def write():
        arr = zarr.create_array(store=path, shape=Y.shape, chunks=(ROWS, chunk), dtype="float32",
                                compressors=compressors, fill_value=0.0, overwrite=True)
        if every_chunk:
            arr = write_every_chunk(arr)
        for j in range(0, Y.shape[1], chunk):  # one column chunk at a time, like the measurement tasks
            arr[:, j:j + chunk] = Y[:, j:j + chunk]

    t_write = best_seconds(write, repeats)
    t_read = best_seconds(lambda: zarr.open_array(path, mode="r")[:], repeats)
    return {"store": name, "write_seconds": t_write, "read_seconds": t_read, "bytes_on_disk": _disk_bytes(path)}


def _band_reads(path, Y, repeats) -> list:
    """Table 3: row bands of the stored sketch through Zarr and through ``read_region`` (same bytes checked)."""
    arr = zarr.open_array(path, mode="r")
    if _layout(arr) is None:
        raise RuntimeError(f"{path}: read_region would fall back to Zarr here; the comparison would be empty")
    D = arr.shape[0]

    def by(read):
        def run():
            for r0 in range(0, D, ROWS):
                read(r0, min(D, r0 + ROWS))
        return run

    rows = [{"reader": "zarr: array[r0:r1, :]", "seconds": best_seconds(by(lambda r0, r1: arr[r0:r1, :]), repeats)},
            {"reader": "sketchla.store.fastread.read_region",
             "seconds": best_seconds(by(lambda r0, r1: read_region(arr, slice(r0, r1), slice(None))), repeats)}]
    assert np.array_equal(read_region(arr, slice(None), slice(None)), Y)
    for r in rows:
        r["GB_per_s"] = Y.nbytes / r["seconds"] / 1e9
        r["ratio_to_zarr"] = r["seconds"] / rows[0]["seconds"]
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--D", type=int, default=134_154)
    p.add_argument("--n", type=int, default=256)
    p.add_argument("--chunk", type=int, default=8, help="columns per Zarr chunk (a measurement task)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "out" / "sketch_io.json"))
    a = p.parse_args(argv)
    if a.quick:
        a.D, a.n = 20_000, 64
    for name in ("D", "n", "chunk", "repeats"):
        if getattr(a, name) < 1:
            p.error(f"--{name} must be at least 1")

    rows = min(a.D, 2 * TILE_ROWS)
    gen = []
    for kind in KINDS:
        tm = TestMatrix((a.D, a.n), seed=0, name="bench", kind=kind)
        t = best_seconds(lambda: tm.block(slice(0, rows), slice(None)), a.repeats)
        gen.append({"kind": kind, "seconds": t, "ns_per_entry": 1e9 * t / (rows * a.n)})
    base = gen[0]["seconds"]
    print(f"Table 1: generating a {rows:,} × {a.n} float32 test-matrix block (best of {a.repeats})")
    print(f"{'kind':<12}{'seconds':>10}{'ns/entry':>10}{'÷ gaussian':>12}")
    for g in gen:
        g["ratio_to_gaussian"] = g["seconds"] / base
        print(f"{g['kind']:<12}{g['seconds']:>10.3f}{g['ns_per_entry']:>10.2f}{g['ratio_to_gaussian']:>12.3f}")

    Y = TestMatrix((a.D, a.n), seed=1, name="sketch").toarray()
    stores = []
    with tempfile.TemporaryDirectory(prefix="sketch-io-") as d:
        codecs = _store_codecs(d)
        stores.append(_store_row("former: zstd-0 + crc32c, fill-value check",
                                 os.path.join(d, "former.zarr"), Y,
                                 (ZstdCodec(level=0, checksum=False), Crc32cCodec()), False, a.chunk, a.repeats))
        stores.append(_store_row("crc32c, fill-value check",
                                 os.path.join(d, "middle.zarr"), Y, codecs, False, a.chunk, a.repeats))
        stores.append(_store_row("current: crc32c, every chunk written",
                                 os.path.join(d, "current.zarr"), Y, codecs, True, a.chunk, a.repeats))
        bands = _band_reads(os.path.join(d, "current.zarr"), Y, a.repeats)
    f = stores[0]
    print(f"\nTable 2: a {a.D:,} × {a.n} float32 sketch ({Y.nbytes / 1e6:.0f} MB) in {ROWS} × {a.chunk} chunks "
          f"(best of {a.repeats}); ratios to the former store")
    print(f"{'store':<44}{'write s':>9}{'÷':>7}{'read s':>9}{'÷':>7}{'MB on disk':>12}{'÷':>7}")
    for s in stores:
        s["write_ratio"] = s["write_seconds"] / f["write_seconds"]
        s["read_ratio"] = s["read_seconds"] / f["read_seconds"]
        s["bytes_ratio"] = s["bytes_on_disk"] / f["bytes_on_disk"]
        print(f"{s['store']:<44}{s['write_seconds']:>9.3f}{s['write_ratio']:>7.2f}{s['read_seconds']:>9.3f}"
              f"{s['read_ratio']:>7.2f}{s['bytes_on_disk'] / 1e6:>12.1f}{s['bytes_ratio']:>7.3f}")

    print(f"\nTable 3: the current store read in bands of {ROWS} rows × all {a.n} columns (best of {a.repeats})")
    print(f"{'reader':<44}{'seconds':>9}{'GB/s':>7}{'÷ zarr':>8}")
    for b in bands:
        print(f"{b['reader']:<44}{b['seconds']:>9.3f}{b['GB_per_s']:>7.2f}{b['ratio_to_zarr']:>8.3f}")

    write_report(a.out, {"setting": {"D": a.D, "n": a.n, "chunk": a.chunk, "rows": ROWS, "repeats": a.repeats,
                                     "generated_rows": rows, "cpu_count": os.cpu_count()},
                         "generation": gen, "stores": stores, "band_reads": bands})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
