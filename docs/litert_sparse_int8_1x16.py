"""Minimal reproduction: LiteRT's sparse int8 FULLY_CONNECTED kernel (1x16 blocks) against the same file densely encoded."""
import os
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import numpy as np
import tensorflow as tf
import tf_keras as keras
from ai_edge_litert.interpreter import Interpreter, OpResolverType

def file(inputs, sparse, weights, calibration):
    x = keras.Input((inputs,))
    model = keras.Model(x, keras.layers.Dense(weights.shape[1], use_bias=False)(x))
    model.layers[-1].kernel.assign(weights)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = ([tf.lite.Optimize.EXPERIMENTAL_SPARSITY] if sparse else []) + [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([calibration[i:i + 1]] for i in range(len(calibration)))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()

def outputs(blob, x):
    runner = Interpreter(model_content=blob, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    runner.resize_tensor_input(runner.get_input_details()[0]["index"], x.shape)
    runner.allocate_tensors()
    runner.set_tensor(runner.get_input_details()[0]["index"], x)
    runner.invoke()
    return runner.get_tensor(runner.get_output_details()[0]["index"]).copy()

rng = np.random.default_rng(0)
for inputs in (304, 300):  # 304 = 19 blocks of 16; 300 is not a multiple of 16
    blocks = rng.random((-(-inputs // 16), 64)) < 0.2  # 20% of 1x16 blocks kept
    weights = (rng.normal(size=(inputs, 64)) * np.repeat(blocks, 16, axis=0)[:inputs]).astype(np.float32)
    x = rng.random((256, inputs)).astype(np.float32)
    sparse, dense = outputs(file(inputs, True, weights, x[:64]), x), outputs(file(inputs, False, weights, x[:64]), x)
    print(f"inputs={inputs}: max |sparse - dense| = {np.abs(sparse - dense).max():.4f}, "
          f"top-1 agreement {np.mean(sparse.argmax(1) == dense.argmax(1)):.3f}")
