import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# fixtures shared across folders: a real face and a local S3 server; the RAPO starter graph
pytest_plugins = ["tests.fixtures.faces", "tests.fixtures.rapo", "tests.faults.runs"]
