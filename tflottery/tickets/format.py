"""The ticket format (version 2): what a ticket directory holds and the limits it is read under.

    ticket.json     what the ticket is (below), the sha256 of every other file, and the sha256
                    of its own canonical content ("digest"): the ticket's identity
    model.json      the architecture (Keras JSON); rebuilt only from built-in layers
    weights.npz     the trained weights, pruned ones exactly zero
    masks.npz       one boolean array per pruned kernel, keyed "<layer>__kernel"
    rewind.npz      the weights the ticket trains from (its rewind point, masked)
    saved_model/    the same network as a SavedModel for TensorFlow Serving and plain TensorFlow
                    (signatures "serving_default" -> logits, "probabilities" -> softmax); its
                    files' sha256 are listed, but the digest does not cover them and tflottery
                    never loads or verifies a received one: a SavedModel runs graph code, so a
                    consumer of a shared ticket should rebuild it from the verified arrays
                    (`load_ticket(...)` then `model.save(...)`) rather than trust it

A network that a ticket cannot rebuild without running code (built by a user's code, or holding a
`Lambda` or custom layer) gives a weights-only ticket: no model.json or saved_model/, and
"weights_only": {"why", "inputs"} in ticket.json; `load_ticket(path, model=...)` fills the user's
model with its arrays by path (names and shapes checked).
"""
from __future__ import annotations

import hashlib
import json

FORMAT = "tflottery-ticket"
VERSION = 2
DATA_FILES = ("model.json", "weights.npz", "masks.npz", "rewind.npz")
WEIGHTS_FILES = DATA_FILES[1:]  # a weights-only ticket ("weights_only" in ticket.json): a network built by code
OURS = {"ticket.json", *DATA_FILES, "saved_model", "tflite"}  # what a ticket directory may hold
DERIVED = ("tflite",)  # written later by `convert`, not part of the ticket's identity

MAX_JSON_BYTES = 16 << 20
MAX_FILE_BYTES = 1 << 30  # one listed file
MAX_TOTAL_BYTES = 4 << 30  # every file of a ticket together
MAX_FILES = 1000
MAX_DEPTH = 8  # folders inside a ticket
MAX_ARRAYS = 10_000
MAX_ELEMENTS = 250_000_000  # weights in one ticket (1 GB as float32)
MAX_ACTIVATIONS = 1 << 25  # values one layer may output per example before the ticket is refused
MAX_LEVEL = 200
MAX_INT = 2 ** 53  # integers past this in ticket.json are refused
ARRAY_DTYPES = {"masks.npz": ("|b1",), "weights.npz": ("<f4",), "rewind.npz": ("<f4",)}
DIGEST_COVERS = "ticket.json and the data files; not saved_model/"  # what digest_of vouches for (format 2, 0.3)
SAVED_MODEL_NOTE = ("written at export from the same weights, not verified on read: a SavedModel runs graph code; "
                    "rebuild it from the verified arrays (load_ticket, then save) before serving a ticket you received")

# Built-in tf_keras classes a ticket's architecture may use: none of them runs code from the file.
SAFE_CLASSES = {
    "Functional", "Sequential", "Model", "InputLayer", "Dense", "Conv1D", "Conv2D", "Conv3D", "DepthwiseConv2D",
    "SeparableConv2D", "Conv2DTranspose", "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D",
    "AveragePooling2D", "AveragePooling3D", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "Flatten", "Reshape", "Permute", "RepeatVector", "Dropout",
    "SpatialDropout2D", "GaussianNoise", "BatchNormalization", "LayerNormalization", "Activation", "ReLU",
    "LeakyReLU", "PReLU", "ELU", "Softmax", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum",
    "Concatenate", "ZeroPadding1D", "ZeroPadding2D", "Cropping2D", "UpSampling2D", "Rescaling", "Normalization",
    "Embedding", "EinsumDense", "MultiHeadAttention", "LSTM", "GRU", "SimpleRNN", "Bidirectional",
    "GlobalAveragePooling3D",
    # initializers, regularizers, constraints
    "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "LecunNormal", "LecunUniform", "RandomNormal",
    "RandomUniform", "TruncatedNormal", "VarianceScaling", "Zeros", "Ones", "Constant", "Orthogonal", "Identity",
    "L1", "L2", "L1L2", "OrthogonalRegularizer", "MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm", "RadialConstraint",
}
SAFE_MODULES = {None, "keras", "keras.layers", "keras.initializers", "keras.regularizers", "keras.constraints",
                "keras.models", "keras.src.engine.functional", "keras.engine.functional", "keras.src.models",
                "keras.src.engine.sequential", "keras.engine.sequential"}
CODE_KEYS = {"function", "function_type", "output_shape_type", "module_path", "arguments"}


def canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def digest_of(meta: dict) -> str:
    """The sha256 of ticket.json's canonical content without its own "digest" field. Since 0.3 it leaves out
    the saved_model/ files (their bytes differ between two exports of one ticket): the same ticket exported
    twice has the same digest. A ticket of 0.2 (no "digest_covers") is checked by the rule it was made with."""
    content = {k: v for k, v in meta.items() if k != "digest"}
    if content.get("digest_covers") == DIGEST_COVERS and isinstance(content.get("files"), dict):
        content["files"] = {k: v for k, v in content["files"].items() if not k.startswith("saved_model/")}
    return hashlib.sha256(canonical(content)).hexdigest()
