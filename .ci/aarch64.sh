#!/usr/bin/env bash
# The aarch64 stage: the device side on an emulated Raspberry Pi OS Python 3.11 (qemu-user), for each
# interpreter site (ai-edge-litert + numpy 2, tflite-runtime 2.14 + numpy 1.26, onnxruntime + numpy 2):
# the runtime tests an architecture can change, `python -m edgernn stream` on a short input, and the on-device
# verify of the default-size (50-unit) SimpleRNN, GRU and LSTM bundles (every variant) and a window bundle against
# the float outputs stored in them, on a Pi 5 CPU (Cortex-A76), then SimpleRNN and LSTM again on a Pi 4 CPU
# (Cortex-A72). Usage: .ci/aarch64.sh BUNDLES_DIR
#
# Which runtime tests run here: every one not marked `portable` (pyproject.toml). What an aarch64 CPU can change
# is what an interpreter and numpy compute: predictions and their parity with the stored and the exporting
# machine's outputs, quantization and its rounding, batched streams against lone ones, intervals, the TFLite
# kernels and the verify verdicts. Pure-Python behaviour (error paths for bad bundles, states and options, file
# handling, parsing, fuzzing untrusted input) is marked `portable`: the x86 runtime-only and bare stages prove it,
# and under qemu it only costs time. A test that computes anything with a model stays unmarked, so it runs here;
# tests that start Python processes skip here anyway (needs_spawn: no binfmt_misc), and the window bundle's verify
# test leaves that bundle to the verify step below (the same check on the same CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
BUNDLES=$1
ARM=.aarch64
setup() { bash ../shared/aarch64/setup.sh "$ARM" click pytest hypothesis pytest-timeout cryptography | tail -n 1; }
if ! PYARM=$(setup); then
  echo "aarch64 setup failed; retrying once" >&2
  rm -rf "$ARM"
  PYARM=$(setup) || { echo "aarch64 setup failed twice: the aarch64 stage cannot run" >&2; exit 1; }
fi
[ -x "$PYARM" ] || { echo "aarch64 setup gave no launcher ($PYARM)" >&2; exit 1; }
export EDGERNN_EMULATED=1 EDGERNN_NO_SPAWN=1 EDGERNN_TEST_BUNDLES=$BUNDLES
# the c backend compiles for the emulated CPU with the cross compiler (the host's cc makes x86 code); without one,
# a compiler that is not there, so its tests skip saying so
CC=$(command -v aarch64-linux-gnu-gcc || echo /nonexistent/aarch64-cc)
export CC EDGERNN_CACHE=$PWD/$ARM/c-cache

# One interpreter site: the runtime tests, a stream, the on-device verifies (Pi 5's A76), then the default SimpleRNN
# and the LSTM (tflite-runtime's reference-kernel case) again on a Pi 4's CPU (Cortex-A72: no dot-product
# instructions, so the integer kernels take other code paths than on the A76); GRU and window only on the A76
site_stage() {
  local site=$1 variant=tflite-int8 lines bundle
  [ "$site" = onnx ] && variant=onnx-int8
  echo "== aarch64 / $site: runtime tests an architecture can change (not portable)"
  PYTHONPATH="$ARM/site-$site:." "$PYARM" -m pytest -q -p no:cacheprovider -rxs -o timeout=1200 \
    -m "not slow and not portable" tests/runtime
  echo "== aarch64 / $site: python -m edgernn stream ($variant)"
  lines=$(seq 0 199 | awk '{ printf "%.4f\n", sin($1 / 6.4) }' \
          | PYTHONPATH="$ARM/site-$site:." "$PYARM" -m edgernn stream "$BUNDLES/sine" --variant "$variant" | wc -l)
  [ "$lines" -eq 200 ] || { echo "stream printed $lines lines for 200 values" >&2; return 1; }
  echo "200 values in, 200 predictions out"
  for bundle in sine50 gru50 lstm50 window; do
    echo "== aarch64 / $site: python -m edgernn verify $bundle (stored reference)"
    PYTHONPATH="$ARM/site-$site:." "$PYARM" -m edgernn verify "$BUNDLES/$bundle"
  done
  for bundle in sine50 lstm50; do
    echo "== aarch64 cortex-a72 / $site: python -m edgernn verify $bundle (stored reference)"
    QEMU_CPU=cortex-a72 PYTHONPATH="$ARM/site-$site:." "$PYARM" -m edgernn verify "$BUNDLES/$bundle"
  done
}

# the three sites side by side (each emulated Python runs on one core), each into its own log, printed in order
status=0
for site in litert tflite onnx; do
  (set -e; site_stage "$site") > "$ARM/log-$site" 2>&1 &
  eval "pid_$site=$!"
done
for site in litert tflite onnx; do
  pid_var="pid_$site"
  if wait "${!pid_var}"; then result=passed; else result=FAILED; status=1; fi
  cat "$ARM/log-$site"
  echo "== aarch64 / $site: $result"
done
exit $status
