"""Winning tickets on disk: export one branch of one level of a run; verify, load and apply one anywhere.

See `format` for what a ticket holds, `read` for how a shared ticket is checked before use,
`intake` for how a shared ticket joins a run of its own.

Weights are named with one vocabulary everywhere: `weights="trained"` (the ticket's trained
weights), `"rewind"` (the weights it trains from), and for `apply_ticket` also `"keep"`
(the model's own weights, the ticket's mask only).
"""
from __future__ import annotations

from pathlib import Path

from tflottery.core.errors import ConfigError, TicketError
from tflottery.core.values import as_literal_true
from tflottery.tickets.export import DEFAULT_DIR, export_ticket
from tflottery.tickets.read import Ticket, read_ticket

__all__ = ["DEFAULT_DIR", "Ticket", "apply_ticket", "export_ticket", "load_ticket", "read_ticket", "ticket_config"]
WEIGHTS = ("trained", "rewind", "keep")


def _weights(value, allowed: tuple) -> str:
    if value not in allowed:
        raise TicketError(f"weights={value!r}: use {', '.join(repr(a) for a in allowed)} (trained: the ticket's trained "
                          "weights; rewind: the weights it trains from; keep: your model's own).")
    return value


def load_ticket(path: "str | Path", weights: str = "trained", trust_code: bool = False, keras: int = 2, model=None):
    """A ticket as a tf_keras Functional model with its masks enforced, ready for `compile` and `fit`.

    `weights="trained"` gives the trained sparse weights, `weights="rewind"` the ticket's
    initialisation for retraining. The model outputs logits: compile it with
    `SparseCategoricalCrossentropy(from_logits=True)`. Its forward pass uses weight x mask, so
    pruned weights stay exactly zero however it is trained (fit, train_on_batch, a GradientTape).
    `keras=3` gives a Keras 3 model instead (`import keras`, on its TensorFlow or JAX backend), the
    masks kept by constraints its optimizers apply after every step (`tflottery.tickets.keras3`).
    `model`: a tf_keras model of your own, or the code that builds it (a class or a function), to fill with the
    ticket's weights and masks by path (`apply_ticket`): what a weights-only ticket (a network built by code, or
    with Lambda or custom layers) needs, since it rebuilds no network.
    """
    _weights(weights, WEIGHTS[:2])
    if model is not None:
        from tflottery.models.keras3 import is_keras3

        model = _model_for(model, path)
        if is_keras3(model):
            from tflottery.tickets.keras3 import fill

            return fill(model, path, weights)
        return apply_ticket(model, path, weights)
    if keras not in (2, 3) or isinstance(keras, bool):
        raise TicketError(f"load_ticket keras={keras!r}: 2 (tf_keras, the default) or 3 (Keras 3).")
    trust_code = as_literal_true(trust_code, "trust_code")
    if keras != 2:
        from tflottery.tickets.keras3 import load_ticket as load_keras3

        return load_keras3(path, weights, trust_code)
    ticket = read_ticket(path, trust_code)
    from tflottery.pruning import wrap

    wrapped = wrap.wrap(ticket.build(weights), list(ticket.masks))
    wrap.set_masks(wrapped, ticket.masks)
    return wrapped


def apply_ticket(model, path: "str | Path", weights: str = "rewind"):
    """Put a ticket's masks (and its rewind or trained weights, unless `weights="keep"`) on a matching model
    of your own. Layer names and shapes must match the ticket's. Returns the wrapped model (masks enforced)."""
    _weights(weights, WEIGHTS)
    from tflottery.models import check_model, set_weights, weight_variables
    from tflottery.pruning import wrap

    check_model(model)
    ticket = read_ticket(path)
    variables = weight_variables(model)
    for name, mask in ticket.masks.items():
        if name not in variables:
            raise TicketError(f"{ticket.path / 'masks.npz'}: mask {name!r} matches no layer of model "
                              f"{model.name!r}; its weights are {sorted(variables)[:8]}.")
        if tuple(variables[name].shape) != mask.shape:
            raise TicketError(f"{ticket.path / 'masks.npz'}: mask {name!r} has shape {mask.shape}, but the "
                              f"model's {name} has shape {tuple(variables[name].shape)}.")
    wrapped = wrap.wrap(model, list(ticket.masks))
    if weights != "keep":
        values = ticket.rewind if weights == "rewind" else ticket.weights
        missing = set(weight_variables(wrapped)) - set(values)
        if missing:
            raise TicketError(f"{ticket.path} has no {weights} weights for {sorted(missing)[:5]}: the model is not the "
                              "ticket's architecture; use weights='keep' to apply the masks only.")
        set_weights(wrapped, values)
    wrap.set_masks(wrapped, ticket.masks)
    return wrapped


def _model_for(model, path):
    """`model`, or the network its code builds on the ticket's inputs."""
    from tflottery.models.built import built_model, is_builder

    if not is_builder(model):
        return model
    ticket = read_ticket(path)
    shape = ticket.meta.get("weights_only", {}).get("inputs") or ticket.meta.get("data", {}).get("input_shape")
    if not shape:
        raise TicketError(f"{ticket.path} does not record its input shape: build the model yourself and pass it "
                          "(model=MyModel() called once on an input).")
    from tflottery.models.keras3 import built_keras3

    return built_keras3(model, tuple(shape)) or built_model(model, tuple(shape))


def ticket_config(meta: dict):
    """The RunConfig a ticket was found with (for transfer defaults and re-evaluation)."""
    from tflottery.config import RunConfig
    from tflottery.pruning.resolve import upgrade

    data = {k: meta["data"][k] for k in ("dataset", "labels", "remap_labels", "fraction", "fraction_part")
            if k in meta["data"]}
    try:
        return RunConfig.from_dict({"data": data, "model": {"name": meta["model"]["name"]},
                                    "pruning": upgrade(meta["pruning"]) if isinstance(meta["pruning"], dict) else meta["pruning"], "training": meta["training"],
                                    "seed": meta["seed"]}).validate()
    except ConfigError as error:
        raise TicketError(f"ticket.json records a configuration this tflottery cannot use: {error}") from None
