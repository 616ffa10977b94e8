"""`cinerl train character`'s entry: the Wan2.2 character LoRA (trainer.py), or, when
`--model-dir` is a diffusers image pipeline folder, the same loop in that pipeline's objective
(image_pipeline.py)."""

from __future__ import annotations

from cinerl.training.character.config import CharacterConfig
from cinerl.training.character.image_pipeline import ImageTrainer, is_image_pipeline
from cinerl.training.character.trainer import CharacterResult, Trainer


def train(config: CharacterConfig, components=None) -> CharacterResult:
    """Train (or resume) a character LoRA of the model in `config.model_dir`."""
    trainer = ImageTrainer if is_image_pipeline(config.model_dir) else Trainer
    return trainer(config, components).run()
