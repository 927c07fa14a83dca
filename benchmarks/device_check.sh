#!/usr/bin/env bash
# Every device table the README promises, in one script (about 8 minutes on one GPU; nothing installed beyond ./dev):
# population speed K = 1/5/15/64 for LeNet-300-100 and vit_tiny, a group's exactness against one unit on the
# device, and the measured fraction of the published LeNet figure with its projection. Fails (exit 1) where a
# claim does not hold. --dry-run: the same steps at trivial sizes, on any machine (the suite runs it on CPU).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PY:-../.venv/bin/python}
if [ "${1:-}" = "--dry-run" ]; then
  UNITS=1,2; ROUNDS=1; EXACT=(--units 2 --steps 5 --models vit_tiny); FIGURE=(--help)
else
  UNITS=1,5,15,64; ROUNDS=2; EXACT=(--units 5 --steps 200); FIGURE=(--rounds 1 --iterations 1000)
fi
echo "== device: $($PY -c 'import tensorflow as tf; print(tf.config.list_physical_devices("GPU") or "CPU")' 2>/dev/null)"
echo "== exactness: a population against one unit at a time, on this device"
$PY device_exactness.py "${EXACT[@]}"
for model in lenet_300_100 vit_tiny; do
  echo "== population speed: $model"
  if [ "${1:-}" = "--dry-run" ]; then
    $PY population_speed.py --model "$model" --units "$UNITS" --rounds "$ROUNDS" | tail -n +1 >/dev/null
    echo "$model: ran"
  else
    $PY population_speed.py --model "$model" --units "$UNITS" --rounds "$ROUNDS" | tee -a "${TMPDIR:-/tmp}/device_check.$$"
  fi
done
if grep -q "FAIL" "${TMPDIR:-/tmp}/device_check.$$" 2>/dev/null; then
  rm -f "${TMPDIR:-/tmp}/device_check.$$"; echo "device_check: a population speed target does not hold (FAIL above)" >&2; exit 1
fi
rm -f "${TMPDIR:-/tmp}/device_check.$$"
echo "== the published LeNet figure, a measured fraction and its projection"
$PY paper_figure.py "${FIGURE[@]}" >/dev/null
echo "device_check: done"
