"""The generated token task: its labels are what they say (a count of the query), the same arrays in every process,
train and test disjoint streams, token ids reaching the model as they are."""
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
