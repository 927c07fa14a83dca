"""What is pruned as one unit: weights, blocks of TFLite's sparse kernels, N:M groups or channels (jaxpruner's
`sparsity_types`: structure as its own axis). Any strategy prunes under any structure.

Adding a structure: subclass `Structure` in a file of its own, give it `kind`, a `Settings`
dataclass, `keys` (the settings keys that name it in a config) and an `example` (a structure value
that chooses it: the contract tests prune under it with every strategy), and `register` it here.
"""
from tflottery.pruning.structures.base import STRUCTURES, Structure, register, structure_kind
from tflottery.pruning.structures.blocks import Blocks
from tflottery.pruning.structures.channels import Channels
from tflottery.pruning.structures.nm import NByM
from tflottery.pruning.structures.unstructured import Unstructured

for _cls in (Unstructured, Blocks, NByM, Channels):
    register(_cls)

__all__ = ["STRUCTURES", "Blocks", "Channels", "NByM", "Structure", "Unstructured", "register", "structure_kind"]
