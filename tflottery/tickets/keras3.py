"""Tickets in Keras 3 (`keras`, the TensorFlow or JAX backend): the same verified ticket, rebuilt layer by layer.

`load_ticket(path, keras=3)` reads the ticket with the safe reader (the same allowlist and
refusals: nothing in a ticket runs code), rebuilds its graph in Keras 3 from each layer's plain
settings (`tflottery.models.keras3.translate`), and sets the ticket's weights. Each pruned kernel
carries a `TicketMask` constraint (`tflottery.pruning.keras3`), which Keras 3 optimizers apply
after every update, so pruned weights are exactly zero after every step of any `fit`, whatever
the optimizer (weight decay included). `TicketMask` is registered serializable:
`model.save("x.keras")` and `keras.models.load_model` round-trip once tflottery is imported.

A ticket found in Keras 3 (`Keras3IMP` in a user's fit) is exported as any ticket is: its
architecture translated to tf_keras, so it loads in tf_keras, plain TensorFlow and Keras 3 alike.
"""
from __future__ import annotations

from pathlib import Path

from tflottery.core.errors import ModelError, TicketError


def load_ticket(path: "str | Path", weights: str = "trained", trust_code: bool = False):
    """A ticket as a Keras 3 Functional model (logits out), its masks enforced in any `fit` (see the module)."""
    from tflottery.models.keras3 import translate
    from tflottery.pruning.keras3 import TicketMask
    from tflottery.tickets.read import read_ticket

    ticket = read_ticket(path, trust_code)
    source = ticket.build(weights)
    kernels = {k: TicketMask(m) for k, m in ticket.masks.items() if k.endswith("/kernel")}
    try:
        return translate(source, to=3, kernel_constraints=kernels, where=str(path))
    except ModelError as e:
        raise TicketError(f"{e} Load it with load_ticket(path) in tf_keras.") from None


def fill(model, path: "str | Path", weights: str = "trained"):
    """A Keras 3 model of the user's (a subclassed one included, built) with a ticket's weights and masks by path:
    names and shapes checked, one line per mismatch; each mask a `TicketMask` on its variable."""
    from tflottery.models.keras3 import set_weights, weight_variables
    from tflottery.pruning.keras3 import set_mask
    from tflottery.tickets.read import read_ticket

    ticket = read_ticket(path)
    variables = weight_variables(model)
    values = ticket.rewind if weights == "rewind" else ticket.weights
    for name, array in {**values, **ticket.masks}.items():
        if name not in variables:
            raise TicketError(f"{ticket.path}: {name!r} matches no weight of model {model.name!r}; its weights are "
                              f"{sorted(variables)[:8]}.")
        if tuple(variables[name].shape) != tuple(array.shape):
            raise TicketError(f"{ticket.path}: {name!r} has shape {tuple(array.shape)}, the model's "
                              f"{tuple(variables[name].shape)}.")
    if set(variables) - set(values):
        raise TicketError(f"{ticket.path} has no {weights} weights for {sorted(set(variables) - set(values))[:5]}: the "
                          "model is not the ticket's network.")
    set_weights(model, values, str(ticket.path))
    for name, mask in ticket.masks.items():
        set_mask(model, name, mask)
    return model
