"""The IMP engine: seeds, optimizer, one level's training, the run store, branches and the level loop.

`seeds`, `store` and `branches` import no TensorFlow, so configs can be validated and runs
listed before TensorFlow loads.
"""
