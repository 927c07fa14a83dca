"""Shared set-up of every test: offline, quiet, tests/ on the path for `helpers`; fixtures."""
import os
import sys

os.environ["TFLOTTERY_OFFLINE"] = "1"  # never probe the network from tests
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))

import pytest  # noqa: E402

import tflottery  # noqa: E402,F401  (sets TF_USE_LEGACY_KERAS first)
from tflottery.config import DataConfig  # noqa: E402


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run in an empty directory so runs/ and saved_tickets/ land there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, sample_data):
    """One tiny LeNet-300-100 run (3 levels on the sample), shared by the tests that only read it or export
    tickets from it: training it once keeps the unit tier fast."""
    from helpers import tiny_config
    from tflottery import find_ticket

    config = tiny_config(levels=3)
    config.runs_dir = str(tmp_path_factory.mktemp("shared") / "runs")
    return find_ticket(config, data=sample_data)


@pytest.fixture(scope="session")
def sample_data():
    """The embedded 5,000-digit MNIST sample, batch 50: tiny and real."""
    from tflottery.data import load

    return load(DataConfig(dataset="mnist", validation=400), batch_size=50)


def pytest_collection_modifyitems(config, items):
    """The unit tier (`-m "not slow"`) is tests/unit: everything under tests/integration and tests/system
    trains networks end to end and counts as slow."""
    for item in items:
        if "tests/unit/" not in item.path.as_posix():
            item.add_marker(pytest.mark.slow)
