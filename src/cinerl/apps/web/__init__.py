"""The workbench (`cinerl ui`): a Gradio app over a folder of runs (apps/web/app.py)."""
