import os

import pytest


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray cluster of 2 CPUs on 127.0.0.1, no dashboard, for one test module; never any
    other address (address="local" starts a new cluster instead of joining one)."""
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # bind to loopback
    import ray

    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
        configure_logging=False,
    )
    try:
        assert ray.get_runtime_context().gcs_address.startswith("127.0.0.1:")
        yield ray
    finally:
        ray.shutdown()


def wait_for_job(executor, key: str, timeout: float = 60.0, after: float = 0.05) -> dict:
    """The info of the actor running job `key`, once it has been at it for `after` seconds."""
    import time

    end = time.time() + timeout
    while time.time() < end:
        for info in executor.running():
            if info["current"] == key and time.time() - info["since"] >= after:
                return info
        time.sleep(0.01)
    raise AssertionError(f"job {key} never ran")
