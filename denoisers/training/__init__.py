"""Train the learned denoisers: random noisy patches in, weights and a model card out.

:func:`train` is the library entry point; ``bench train`` is a thin layer over it. Training
images are read once into memory. Each step draws a batch of random patches (random image,
position and one of the eight flips/rotations) and Gaussian noise with a sigma drawn
uniformly from the level range, all from one seeded ``numpy.random.Generator``, so a run is
reproducible and a resumed run continues the same sequence.

Modules, one job each:

- :mod:`~denoisers.training.config`: :class:`TrainConfig` and the trainable models (the
  shipped ones of ``bench.catalog``, with the architecture of their shipped model cards);
- :mod:`~denoisers.training.data`: the images, patch sampling, held-out validation images;
- :mod:`~denoisers.training.loop`: the optimisation loop, validation, precise batch norm;
- :mod:`~denoisers.training.checkpoint`: saving and resuming;
- :mod:`~denoisers.training.card`: what the model card records.

Importing this package does not import torch; :func:`train` does.
"""

from denoisers.training.checkpoint import load_checkpoint, save_checkpoint
from denoisers.training.config import (TRAIN_PRECISIONS, TrainConfig, TrainResult,
                                       default_architecture, trainable_models)
from denoisers.training.data import (VALIDATION_SIGMAS, TrainingData, load_training_data,
                                     sample_batch, validation_set)
from denoisers.training.loop import learning_rate, recalibrate_batch_norm, train, validate

__all__ = [
    "TRAIN_PRECISIONS", "VALIDATION_SIGMAS", "TrainConfig", "TrainResult", "TrainingData",
    "default_architecture", "learning_rate", "load_checkpoint", "load_training_data",
    "recalibrate_batch_norm", "sample_batch", "save_checkpoint", "train", "trainable_models",
    "validate", "validation_set",
]
