#!/usr/bin/env bash
# Coverage-guided fuzzing (atheris/libFuzzer) of hubcore's module reader and every loader for
# SECONDS (default 60); findings (crashes, hangs, exceptions that are not a hubcore.Error) are
# saved under OUT_DIR (default ./fuzz-findings) and make it exit 1.
# Usage: bench/fuzz.sh SECONDS [OUT_DIR] [SEED]     (see bench/fuzz.py and docs/security.md)
set -euo pipefail
seconds="${1:-60}"
here="$(cd "$(dirname "$0")" && pwd)"
# The fuzzer stops after SECONDS; the outer timeout only guards against a stuck driver (each case
# and each libFuzzer worker has its own timeout inside).
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-3}"  # no TensorFlow start-up noise
exec timeout --kill-after=30 "$((seconds + 180))" \
  python "$here/fuzz.py" --seconds "$seconds" --out "${2:-fuzz-findings}" ${3:+--seed "$3"}
