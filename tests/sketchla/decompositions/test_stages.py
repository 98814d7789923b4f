"""How SEIGH/SSVD stream their sketch: column reads, block heights, chunk files."""
import numpy as np
import pytest
import zarr

from sketchla.blocking import BlockPlan
from sketchla.decompositions._stages import sketch_plan, sketch_rows
from sketchla.random import TILE_ROWS
from sketchla.store import RunStore


@pytest.fixture
def sketch(tmp_path):
    run = RunStore.open(tmp_path / "run", {"seed": 0})
    Y = run.array("Y", (1000, 12), chunks=(300, 4), dtype="float64")
    data = np.random.default_rng(0).standard_normal((1000, 12))
    Y[:] = data
    return Y, data


@pytest.mark.parametrize("cols", [slice(0, 5), slice(4, 12), slice(3, 4), slice(None)])
def test_sketch_rows_reads_exactly_the_columns(sketch, cols):
    Y, data = sketch
    x = sketch_rows(Y, 300, None if cols == slice(None) else cols)
    assert x.chunks[0] == (300, 300, 300, 100)  # one block per Zarr chunk row
    assert len(x.chunks[1]) == 1
    np.testing.assert_array_equal(x.compute(scheduler="sync"), data[:, cols])
    # each block is the Zarr read of its rows and columns
    blk = x.blocks[1, 0].compute(scheduler="sync")
    np.testing.assert_array_equal(blk, data[300:600, cols])


def test_sketch_rows_refuses_strided_columns(sketch):
    with pytest.raises(ValueError, match="contiguous"):
        sketch_rows(sketch[0], 300, slice(0, 12, 2))


@pytest.mark.parametrize("D, rows, gen, block", [
    (10 * TILE_ROWS, TILE_ROWS // 2, TILE_ROWS, TILE_ROWS),          # chunk divides the tile
    (10 * TILE_ROWS, 4 * TILE_ROWS, 4 * TILE_ROWS, 4 * TILE_ROWS),  # tile divides the chunk
    (10 * TILE_ROWS, 50_000, TILE_ROWS, 50_000),                    # neither: tiles are sliced
    (1000, 300, 1000, 1000),                                        # small D: one block
    (TILE_ROWS + 5, TILE_ROWS // 2, TILE_ROWS, TILE_ROWS),
])
def test_thin_product_blocks_are_whole_tiles_and_whole_chunks(D, rows, gen, block):
    assert BlockPlan.generator_rows(D, rows, TILE_ROWS) == gen
    assert BlockPlan(row_block=rows).thin_blocking(D, TILE_ROWS) == (gen, block)
    assert BlockPlan.generator_rows(D, None, TILE_ROWS) == min(D, TILE_ROWS)


def test_a_resumed_sketch_keeps_its_blocking(sketch, tmp_path):
    run = RunStore.open(tmp_path / "run", {"seed": 0})  # the store of the ``sketch`` fixture
    assert sketch_plan(run, "Y", BlockPlan(), 7, 1000, 12) == BlockPlan(chunk=4, row_block=300)
    assert sketch_plan(run, "Z", BlockPlan(), 7, 1000, 12) == BlockPlan(chunk=12, row_block=1000)
    assert sketch_plan(run, "Y", BlockPlan(chunk=2), 7, 1000, 12).chunk == 2  # then refused by the store


def test_store_arrays_write_every_chunk_uncompressed_with_a_checksum(tmp_path):
    """Sketch chunks are noise: no compressor; a CRC-32C guards each chunk, and a
    chunk of zeros (the fill value) still gets its file."""
    run = RunStore.open(tmp_path / "run", {"seed": 0})
    Y = run.array("Y", (100, 4), chunks=(50, 2), dtype="float32")
    Y[:] = 0.0
    Y[50:, 2:] = 1.0
    reopened = zarr.open_array(str(tmp_path / "run"), path="Y", mode="r")
    assert [type(c).__name__ for c in reopened.compressors] == ["Crc32cCodec"]
    files = sorted(p.relative_to(tmp_path / "run" / "Y" / "c").as_posix()
                   for p in (tmp_path / "run" / "Y" / "c").rglob("*") if p.is_file())
    assert files == ["0/0", "0/1", "1/0", "1/1"]
    assert (tmp_path / "run" / "Y" / "c" / "0" / "0").stat().st_size == 50 * 2 * 4 + 4  # raw + CRC
    again = run.array("Y", (100, 4), chunks=(50, 2), dtype="float32")
    again[:50] = 0.0
    assert (tmp_path / "run" / "Y" / "c" / "0" / "0").exists()
