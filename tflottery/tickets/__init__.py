"""Winning tickets on disk: export one branch of one level of a run; verify, load and apply one anywhere.

See `format` for what a ticket holds, `read` for how a shared ticket is checked before use.
"""
from __future__ import annotations

from pathlib import Path

from tflottery.errors import ConfigError, TicketError
from tflottery.tickets.export import DEFAULT_DIR, export_ticket
from tflottery.tickets.read import Ticket, read_ticket

__all__ = ["DEFAULT_DIR", "Ticket", "apply_ticket", "export_ticket", "load_ticket", "read_ticket", "ticket_config"]


def load_ticket(path: "str | Path", weights: str = "trained", trust_code: bool = False):
    """A ticket as a tf_keras model with its masks enforced, ready for `compile` and `fit`.

    `weights="trained"` gives the trained sparse weights, `weights="rewind"` the ticket's
    initialisation for retraining. The model outputs logits: compile it with
    `SparseCategoricalCrossentropy(from_logits=True)`. Pruned weights stay exactly zero
    however it is trained.
    """
    if weights not in ("trained", "rewind"):
        raise TicketError(f"weights={weights!r}: use 'trained' or 'rewind'.")
    ticket = read_ticket(path, trust_code)
    from tflottery.pruning import wrap

    wrapped = wrap.wrap(ticket.build(weights), [k.split("/")[0] for k in ticket.masks])
    wrap.set_masks(wrapped, ticket.masks)
    return wrapped


def apply_ticket(model, path: "str | Path", weights: str = "rewind"):
    """Put a ticket's masks (and its rewind weights, unless `weights="keep"`) on a matching model of your own.

    Layer names and shapes must match the ticket's. Returns the wrapped model (masks enforced).
    """
    if weights not in ("rewind", "keep"):
        raise TicketError(f"weights={weights!r}: use 'rewind' (the ticket's initialisation) or 'keep' (your weights).")
    from tflottery.keras_compat import require_tf_keras
    from tflottery.pruning import wrap

    require_tf_keras(model)
    ticket = read_ticket(path)
    variables = wrap.weight_variables(model)
    for name, mask in ticket.masks.items():
        if name not in variables:
            raise TicketError(f"{ticket.path / 'masks.npz'}: mask {name!r} matches no layer of model "
                              f"{model.name!r}; its weights are {sorted(variables)[:8]}.")
        if tuple(variables[name].shape) != mask.shape:
            raise TicketError(f"{ticket.path / 'masks.npz'}: mask {name!r} has shape {mask.shape}, but the "
                              f"model's {name} has shape {tuple(variables[name].shape)}.")
    wrapped = wrap.wrap(model, [k.split("/")[0] for k in ticket.masks])
    if weights == "rewind":
        missing = set(wrap.weight_variables(wrapped)) - set(ticket.rewind)
        if missing:
            raise TicketError(f"{ticket.path / 'rewind.npz'} has no weights for {sorted(missing)[:5]}: the model "
                              "is not the ticket's architecture; use weights='keep' to apply the masks only.")
        wrap.set_weights(wrapped, ticket.rewind)
    wrap.set_masks(wrapped, ticket.masks)
    return wrapped


def ticket_config(meta: dict):
    """The RunConfig a ticket was found with (for transfer defaults and re-evaluation)."""
    from tflottery.config import RunConfig

    data = {k: meta["data"][k] for k in ("dataset", "labels", "remap_labels", "fraction", "fraction_part")
            if k in meta["data"]}
    try:
        return RunConfig.from_dict({"data": data, "model": {"name": meta["model"]["name"]},
                                    "pruning": meta["pruning"], "training": meta["training"],
                                    "seed": meta["seed"]}).validate()
    except ConfigError as error:
        raise TicketError(f"ticket.json records a configuration this tflottery cannot use: {error}") from None
