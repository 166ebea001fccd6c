"""Layer 4, training: the one loop every network in the book is trained with.

* :mod:`.loop` -- :func:`~ecodistill.training.loop.fit` (AdamW, warm-up + cosine schedule,
  exact resume, early stopping, bf16 autocast on CUDA);
* :mod:`.objectives` -- the loss interface: truth losses and distillation objectives built
  from the loss registry;
* :mod:`.optim`, :mod:`.resume`, :mod:`.distributed` -- optimizer and schedule, checkpoints
  to resume from, data parallelism under ``torchrun``;
* :mod:`.lr_search` -- the learning-rate search every arm gets (widened until interior);
* :mod:`.predictions` -- a trained model's predictions over a split, and their storage.

May import the base modules, the store and the science parts (:mod:`ecodistill.data`,
:mod:`ecodistill.models`, :mod:`ecodistill.losses`, :mod:`ecodistill.evaluate`); knows
nothing of teachers, students or protocols, which live in :mod:`ecodistill.experiments`.
Explained in book/generated/03_distill.ipynb.
"""
