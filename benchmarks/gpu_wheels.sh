#!/usr/bin/env bash
# Fetch the GPU kit's wheels (benchmarks/gpu_wheels.txt) into .whl/ (git-ignored), for
# CPython 3.12 on x86-64 Linux, on any machine with pip and access to PyPI:
#     benchmarks/gpu_wheels.sh            # then carry .whl/ to the GPU machine with the checkout
# --no-deps: every wheel the kit needs is named in the list; the rest is on the GPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
plat=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 \
         manylinux_2_5_x86_64 manylinux1_x86_64 any; do plat+=(--platform "$p"); done
grep -v '^#' benchmarks/gpu_wheels.txt | xargs python3 -m pip download --quiet --disable-pip-version-check \
    --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${plat[@]}" -d .whl
du -sh .whl
