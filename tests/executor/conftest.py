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
