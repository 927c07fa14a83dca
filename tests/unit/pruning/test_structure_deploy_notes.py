"""Every structure says what a ticket found under it means on a phone (the deploy worker asks it, not a table)."""
import pytest

from tflottery.pruning.resolve import deploy_note
from tflottery.pruning.structures import STRUCTURES


@pytest.mark.parametrize("kind", sorted(STRUCTURES))
def test_every_structure_gives_a_deploy_note_or_none(kind):
    cls = STRUCTURES[kind]
    note = cls.deploy_note(cls.Settings())  # every structure's settings have defaults
    assert note is None or (len(note) == 2 and all(isinstance(part, str) for part in note) and note[1])


@pytest.mark.parametrize("pruning, found", [
    ({"strategy": "layerwise", "structure": {"block": [2, 2]}}, "in 2x2 blocks. "),
    ({"strategy": "block", "block_shape": [4, 4]}, "in 4x4 blocks. "),  # a 0.2 ticket's spelling
    ({"strategy": "layerwise", "structure": {"n": 2, "m": 4}}, "")])
def test_a_tickets_structure_note_comes_from_its_stored_pruning_config(pruning, found):
    assert deploy_note(pruning)[0] == found
    assert deploy_note({"strategy": "layerwise", "structure": {"block": [1, 4]}}) is None  # LiteRT's own kernel
    assert deploy_note({"strategy": "layerwise"}) is None
