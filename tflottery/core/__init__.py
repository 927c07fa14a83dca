"""The foundation floor: what every other package shares, importing nothing of tflottery above it.

`errors` (the error family) · `files` (atomic writes, locks, clean-up) · `seeds` (derive_seed) ·
`steps` (Step: "500it", "2ep") · `names` (safe path components, weight keys) · `runner` (the
fire runner of the CLI and the recipes) · `keras_compat` (the one import of tf_keras).
Only `keras_compat` imports TensorFlow, so the CLI checks every flag before TensorFlow loads.
"""
