"""Wan2.2 LoRA training: flow_matching.py (shared maths), latents.py (the latent cache), data.py
(pairs to tensors), model.py (experts and LoRA), dpo.py (Flow-DPO), curriculum.py (the gated length
curriculum). The config lives in config.py, free of torch, for the CLI."""
