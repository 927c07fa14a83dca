"""The data-source registry's contract, parametrised over every registered kind: a kind is tested the moment
its line is added. A source that has a dataset gives uint8 images of the dataset's shape and int32 labels of
its classes (int32 token ids for a token task), and says what it is; one that has nothing says the fix in one line;
`auto` tries them in order."""
import numpy as np
import pytest

from tflottery.core.errors import ConfigError, DataUnavailableError
from tflottery.data.catalog import DATASETS, DIVISORS
from tflottery.data.sources import SOURCES, check_source, load_arrays


def _first_dataset(source):
    return next((d for d in ("mnist", "fashion_mnist", "kmnist", "cifar10", "query_count")
                 if source.available(d, None, None)), None)


@pytest.mark.parametrize("name", list(SOURCES))
def test_every_source_delivers_the_datasets_shape_or_says_the_fix(name):
    source = SOURCES[name]
    assert source.name == name and source.description and name != "auto"
    dataset = _first_dataset(source)
    if dataset is None:  # nothing here offline (tfds without a network): its error names the fix, before any work
        message = source.unavailable("cifar10", "elsewhere")
        assert message and "\n" not in message
        with pytest.raises(DataUnavailableError):
            load_arrays("cifar10", name, None, None)
        return
    (x, y), (x_test, y_test), text = load_arrays(dataset, name, None, None)
    shape, classes, _ = DATASETS[dataset]
    for images, labels in ((x, y), (x_test, y_test)):
        kind = np.int32 if dataset in DIVISORS else np.uint8  # token ids, or uint8 images
        assert images.dtype == kind and images.shape[1:] == shape and len(images) == len(labels) > 0
        assert labels.dtype == np.int32 and 0 <= labels.min() and labels.max() < classes
    assert isinstance(text, str) and text.split(":")[0].split(" ")[0] == name


def test_auto_takes_the_first_source_that_has_the_dataset_and_unknown_names_are_refused():
    auto = [s for s in SOURCES.values() if s.auto]
    first = next(s for s in auto if s.available("mnist", None, None))
    assert load_arrays("mnist", "auto", None, None)[2].startswith(first.name)
    assert "synthetic" not in [s.name for s in auto]  # never science by default
    with pytest.raises(ConfigError, match="data.source='nosuch' is unknown: use auto or one of generated, idx"):
        check_source("nosuch")
