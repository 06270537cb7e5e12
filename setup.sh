#!/usr/bin/env bash
# Installs badminima with what its tests need: the package (torch 2.13.0: the local CPU build on a
# CPU machine, PyPI's CUDA build on a GPU machine) and Debian's chromium + chromedriver for the
# report's browser test.
set -euo pipefail
cd "$(dirname "$0")"
pip install -q torch==2.13.0 -e '.[test]'
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "setup.sh: chromium/chromedriver missing and not installable here; the browser test will be skipped" >&2
  fi
fi
