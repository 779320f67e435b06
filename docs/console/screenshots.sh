#!/usr/bin/env bash
# Regenerates docs/console/*.png: the console's browser test, run against the real test stack,
# saves every page at desktop (1280 px) and phone (390 px) width. Needs chromium and
# chromium-driver (apt-get install chromium chromium-driver) and the dev extra installed.
set -euo pipefail
cd "$(dirname "$0")/../.."
export RAY_AUTH_MODE="${RAY_AUTH_MODE:-disabled}"
CONSOLE_SCREENSHOTS="$PWD/docs/console" .venv/bin/pytest -q -p no:randomly \
  tests/console/test_console_browser.py -k runs_its_whatsapp
ls -1 docs/console/*.png
