"""Token datasets: the generated task's labels are what they say (a count of the query), the same arrays in every
process, train and test disjoint streams, token ids reaching the model as they are; TFDS texts as byte ids."""
import numpy as np

from tflottery import data as data_lib
from tflottery.data.sources.generated import CLASSES, LENGTH, VOCABULARY, query_count


def test_each_label_counts_the_query_among_the_tokens_before_it():
    x, y = query_count(3000, 7)
    assert x.shape == (3000, LENGTH + 1) and x.dtype == np.int32 and 0 <= x.min() and x.max() < VOCABULARY
    assert np.array_equal((x[:, :-1] == x[:, -1:]).sum(axis=1), y)
    assert np.bincount(y, minlength=CLASSES).min() > 3000 / CLASSES * 0.8  # every count, about uniformly
    again, _ = query_count(3000, 7)
    other, _ = query_count(3000, 8)
    assert np.array_equal(again, x) and not np.array_equal(other, x)


def test_the_dataset_loads_offline_with_ids_kept_exact():
    data = data_lib.load(data_lib.DataConfig(dataset="query_count"), batch_size=50)
    assert data.divisor == 1.0 and data.info["source"].startswith("generated")
    assert {k: len(v[1]) for k, v in data.arrays.items()} == {"train": 55000, "test": 10000, "validation": 5000}
    x, y = next(iter(data.train_pipeline(0, 1)))
    assert x.shape == (50, LENGTH + 1) and np.array_equal(x.numpy(), np.round(x.numpy()))
    assert np.array_equal((x.numpy()[:, :-1] == x.numpy()[:, -1:]).sum(axis=1), y.numpy())


def test_tfds_text_datasets_become_byte_ids_of_their_length(monkeypatch):
    """imdb_reviews and glue/sst2 for users with a network, on generated texts of their shape: UTF-8 bytes + 1 as
    ids (0 pads), cut at the dataset's length, labelled test split (sst2's is `validation`)."""
    from tflottery.data.sources import load_arrays, tfds as tfds_source

    asked = []

    class Builder:
        def __init__(self, name):
            self.name = name

        def is_prepared(self):
            return True

        def as_dataset(self, split, batch_size):
            asked.append((self.name, split))
            key = "sentence" if self.name == "glue/sst2" else "text"
            texts = [b"a great film", "naïve".encode(), b"x" * 1000]
            return {key: np.array(texts, dtype=object), "label": np.array([1, 0, 1])}

    class Fake:
        builder = staticmethod(lambda name, data_dir=None: Builder(name))
        as_numpy = staticmethod(lambda value: value)

    monkeypatch.setattr(tfds_source, "_tfds", lambda: Fake)
    monkeypatch.setattr(tfds_source, "prepared", lambda name, data_dir: True)
    load_arrays.cache_clear()
    try:
        (x, y), (x_test, _), source = load_arrays("sst2", "tfds", None, None)
        assert asked == [("glue/sst2", "train"), ("glue/sst2", "validation")] and "bytes" in source
        assert x.shape == (3, 128) and x.dtype == np.int32 and y.tolist() == [1, 0, 1]
        assert x[0, :12].tolist() == [b + 1 for b in b"a great film"] and not x[0, 12:].any()
        assert x[1, :6].tolist() == [b + 1 for b in "naïve".encode()] and x[2].min() == ord("x") + 1  # cut at 128
        (x, _), _, _ = load_arrays("imdb_reviews", "tfds", None, None)
        assert x.shape == (3, 512) and asked[-1] == ("imdb_reviews", "test")
        assert models_fit(x)
    finally:
        load_arrays.cache_clear()


def models_fit(ids) -> bool:
    """text_encoder's default vocabulary holds every byte id."""
    from tflottery import models

    model = models.build("text_encoder", ids.shape[1:], 2)
    return model.get_layer("token_embed").input_dim > ids.max() and np.isfinite(model(ids[:2]).numpy()).all()
