"""BlockPlan: one object, one name per quantity, one byte budget; the defaults every routine derives."""
import numpy as np
import pytest

import sketchla as sk
from sketchla.blocking import BLOCK_BYTES, MAX_CHUNK, SKETCH_ROW_BLOCK, BlockPlan


def test_defaults_and_validation():
    plan = BlockPlan()
    assert (plan.chunk, plan.row_block, plan.block_bytes) == (None, None, BLOCK_BYTES) and sk.BlockPlan is BlockPlan
    with pytest.raises(ValueError, match="chunk must be >= 1"):
        BlockPlan(chunk=0)
    with pytest.raises(TypeError, match="row_block must be a positive int"):
        BlockPlan(row_block=2.5)
    with pytest.raises(TypeError, match="chunk"):
        BlockPlan(chunk=True)
    assert BlockPlan(chunk=np.int64(3)).chunk == 3


def test_measurement_chunk_from_the_budget():
    plan = BlockPlan()
    assert plan.measure_chunk(1000, 1000, 500) == MAX_CHUNK  # small: capped at 64 columns
    assert plan.measure_chunk(1000, 1000, 10) == 10  # never more than n
    # a test block and its output, float64, within four budgets: 256 MiB / (8 · 2 · 10**6) = 16
    assert plan.measure_chunk(10**6, 10**6, 500) == 16
    assert plan.measure_chunk(10**9, 10**9, 500) == 1  # never below 1
    assert BlockPlan(chunk=8).measure_chunk(10**9, 10**9, 5) == 5


def test_the_plan_of_a_sketch():
    assert BlockPlan().for_sketch(100, 10**5, 300) == BlockPlan(chunk=64, row_block=SKETCH_ROW_BLOCK)
    assert BlockPlan().for_sketch(100, 10**6, 300).chunk == 33  # 256 MiB / (8 · (10**6 + 100))
    assert BlockPlan().for_sketch(100, 1000, 300) == BlockPlan(chunk=64, row_block=1000)
    assert BlockPlan(row_block=500, chunk=7).for_sketch(100, 1000, 5) == BlockPlan(chunk=5, row_block=500)

    class Existing:
        chunks = (128, 3)

    assert BlockPlan().for_sketch(100, 1000, 300, existing=Existing()) == BlockPlan(chunk=3, row_block=128)
    assert BlockPlan(chunk=9).for_sketch(100, 1000, 300, existing=Existing()).chunk == 9


def test_rows_of_a_streamed_pass():
    plan = BlockPlan()
    # 64 MiB of float32 rows of 256 columns
    assert plan.stream_rows(256, 4) == 65536
    assert plan.stream_rows(256, 8) == 32768
    assert plan.stream_rows(256, 4, align=10000) == 60000  # whole input chunks
    assert plan.stream_rows(256, 4, n_rows=1000) == 1000
    assert BlockPlan(block_bytes=1).stream_rows(10**6, 8) == 10**6  # ≥ n (square R)
    assert BlockPlan(row_block=77).stream_rows(256, 4, n_rows=10) == 77  # given: used as is


def test_budget_rows_and_columns():
    plan = BlockPlan()
    assert plan.budget_rows(256, 4) == 65536 and plan.budget_rows(10**9, 8) == 1
    assert plan.budget_cols(2**20, 4, 100) == 16 and plan.budget_cols(10, 8, 3) == 3
    assert plan.thin_row_block(256, "float32") == 65536 and BlockPlan(row_block=5).thin_row_block(256, "f4") == 5
