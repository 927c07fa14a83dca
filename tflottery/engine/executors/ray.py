"""The Ray executor: groups of units as Ray tasks on a cluster without shared storage; the driver writes the run.

The driver (`find --executor=ray`) claims every ready unit, groups them (a GPU task takes a
larger group: the population's GPU size), and submits each group as a task (`remote.train_units`)
the moment its units are ready (a level's group as soon as its parent's finishes: no wave waits for another):
the task loads the run's data on its node and trains the group with the run's trainer kind, with
the same kernels (`numerics.json`); the driver stores the results as they arrive. A task whose
worker dies is retried by Ray (`max_retries`). Units that need what only the driver has train in the
driver (`remote.remote_ok`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from tflottery.core.errors import ConfigError, RunError
from tflottery.engine.executors.base import Executor
from tflottery.engine.executors.remote import RemoteUnit, remote_ok, run_payload, train_units
from tflottery.engine.scheduler import GPU_AUTO

MAX_RETRIES = 3
CPUS_PER_TASK = 1


def check_ray():
    """The ray module, or one clear error naming the extra."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor=ray needs Ray, an optional extra: pip install 'tflottery[ray]' (on the driver "
                          "and on every node of the cluster), or use the default --executor=local.") from None
    return ray


def check_reachable(address: str, timeout: float) -> None:
    """A RunError in one line, within `timeout` seconds, unless something answers at the address's host and port
    (Ray itself waits minutes for a head that is not there, deaf to SIGINT)."""
    import socket

    where = address.split("://", 1)[-1]
    host, _, port = where.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--executor.address={address!r}: give host:port (the head's GCS, e.g. 10.0.0.1:6379), "
                          "ray://host:10001 (Ray Client) or auto.")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as error:
        raise RunError(f"--executor.address={address!r}: nothing answers at {host}:{port} within {timeout:g} s "
                       f"({error.strerror or type(error).__name__}); start the cluster there (`ray start --head`), "
                       "or give the address it prints.") from None


def keep_signal_handlers(ray, options) -> None:
    """Start or join the cluster keeping this process's SIGTERM and SIGINT handlers (Ray's driver replaces them
    with an exit that skips the run's clean-up)."""
    import signal
    import threading

    main = threading.current_thread() is threading.main_thread()
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)} if main else {}
    if options.address:
        ray.init(address=options.address, logging_level="warning", log_to_driver=True)
    else:
        ray.init(include_dashboard=False, logging_level="warning", log_to_driver=True)
    for sig, handler in handlers.items():
        signal.signal(sig, handler)


class RayExecutor(Executor):
    """Groups of units as Ray tasks. The driver claims every ready unit: Ray spreads them."""

    name = "ray"

    @dataclass
    class Options:
        """address: a running cluster's (ray://head:10001 or auto; default: start a local one on this machine);
        gpus: GPUs per task (default: 1 where the cluster has GPUs, else 0); connect_timeout: seconds an address
        has to answer before the run is refused."""

        address: Optional[str] = None
        gpus: Optional[int] = None
        connect_timeout: float = 60.0

    @classmethod
    def check(cls, options: "RayExecutor.Options") -> None:
        check_ray()
        gpus = options.gpus
        if gpus is not None and (isinstance(gpus, bool) or not isinstance(gpus, int) or not 0 <= gpus <= 64):
            raise ConfigError(f"--executor.gpus={gpus!r}: give the GPUs each task takes, 0 to 64 (default: 1 where the "
                              "cluster has GPUs, else 0).")
        timeout = options.connect_timeout
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 3600:
            raise ConfigError(f"--executor.connect_timeout={timeout!r}: give seconds in (0, 3600], e.g. 60.")
        if options.address and options.address != "auto":
            check_reachable(options.address, float(timeout))

    def __init__(self, trainer, population: int, setup, options: "RayExecutor.Options"):
        super().__init__(trainer, population, setup, options)
        ray = check_ray()
        self.ray = ray
        if not ray.is_initialized():
            keep_signal_handlers(ray, options)
        self.gpus = options.gpus if options.gpus is not None else int(ray.cluster_resources().get("GPU", 0) > 0)
        auto = setup is not None and setup.config.plan.population == "auto"
        self.population = GPU_AUTO if self.gpus and auto else population  # a GPU task takes a larger group
        self._run = None

    @property
    def capacity(self) -> int:
        return 1 << 30

    def describe(self) -> str:
        resources = self.ray.cluster_resources()
        return (f"Ray ({int(resources.get('CPU', 0))} CPUs, {int(resources.get('GPU', 0))} GPUs), tasks of "
                f"{'1 GPU' if self.gpus else f'{CPUS_PER_TASK} CPU'}")

    def run_ref(self):
        """The run's payload, put in Ray's object store once."""
        if self._run is None:
            self._run = self.ray.put(run_payload(self.setup, self.trainer, CPUS_PER_TASK))
        return self._run

    def remote(self, group: list) -> bool:
        return all(remote_ok(u) for u in group)

    def start(self, group: list):
        task = self.ray.remote(max_retries=MAX_RETRIES)(train_units).options(
            num_cpus=CPUS_PER_TASK, num_gpus=self.gpus, name="tflottery_train_units")
        return task.remote(self.run_ref(), [RemoteUnit.of(u) for u in group])

    def wait_one(self):
        done, _ = self.ray.wait(list(self._futures), num_returns=1)
        return done[0]

    def result(self, future) -> list:
        return self.ray.get(future)

    def close(self) -> None:
        """Cancel the tasks still running (a stopped driver leaves nothing training on the cluster)."""
        for future in self._futures:
            try:
                self.ray.cancel(future, force=True)
            except Exception:  # finished meanwhile, or the cluster is gone: nothing left to cancel
                pass
        super().close()
