#!/usr/bin/env bash
# Install curate with every extra into ./.venv, offline-friendly: torch comes from the local
# wheel cache where the machine has one; nothing here downloads model weights or datasets.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

# Fashion-MNIST train+test files (Debian, MIT) for the tests and benchmarks that need the
# train split; the demo itself ships its data inside the package and needs none of this.
if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get update -qq >/dev/null && apt-get install -y -qq dataset-fashion-mnist >/dev/null \
    || echo "note: could not install dataset-fashion-mnist; tests that need it will skip" >&2
fi

"$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
case "$(uname -m)" in
  aarch64|arm64) python -m pip install -q torch==2.9.1 torchvision==0.24.1 ;;
  *) python -m pip install -q torch==2.14.1 torchvision==0.29.1 ;;
esac
python -m pip install -q -e '.[dev,docs,clip,effnet,hf,prune,labels,check,report,ray]'
echo "installed curate into .venv ($(python -c 'import curate; print(curate.__version__)'))"
