"""The one place that imports Keras: tf_keras (Keras 2), which tfmot 0.8 requires."""
import tflottery  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf  # noqa: F401
import tf_keras as keras

from tflottery.core.errors import ModelError

__all__ = ["keras", "require_tf_keras"]


def require_tf_keras(model, what: str = "model") -> "keras.Model":
    """Return `model` if it is a tf_keras model, else raise a ModelError that says how to fix it."""
    if isinstance(model, keras.Model):
        if not (isinstance(model, keras.Sequential) or getattr(model, "_is_graph_network", False)):
            raise ModelError(
                f"The {what} is a subclassed tf_keras Model ({type(model).__name__}), which has no config to copy "
                f"it from: pass the code that builds it instead, find_ticket(model={type(model).__name__}) or "
                f"model=lambda: {type(model).__name__}(...), and every copy is built from it."
            )
        return model
    module = type(model).__module__
    if module.startswith("keras"):
        raise ModelError(
            f"The {what} is a Keras 3 model ({module}.{type(model).__name__}); tfmot and tflottery need "
            "Keras 2: build it with `import tf_keras as keras` (pip package tf-keras) instead of "
            "`import keras` or `tf.keras`."
        )
    raise ModelError(f"The {what} must be a tf_keras Model, got {type(model).__name__}.")
