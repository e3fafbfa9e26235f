#!/usr/bin/env bash
# Download the Python 3.12 x86_64 wheels that the GPU box lacks (it has torch, torchvision,
# timm, numpy, pyarrow and pillow) into DIR, to carry there for benchmarks/gpu.py:
#   bash benchmarks/gpu_wheels.sh gpu-wheels   # then on the box: pip install --no-deps gpu-wheels/*.whl
# About 40 MB: scipy (prune's connected components), typer/rich (the CLI), duckdb (SQL, run.json).
set -euo pipefail
dir=${1:-gpu-wheels}
py=${PYTHON:-python3}
"$py" -m pip download --only-binary=:all: --python-version 3.12 \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --no-deps -d "$dir" scipy duckdb typer click rich markdown-it-py mdurl pygments shellingham \
  typing-extensions threadpoolctl
du -sh "$dir"
