"""Layer 6, experiments: the runs the book reports, composed from the layers below.

* :mod:`.workspace` -- a profile's dataset, its preparation, devices and loaders, opened once;
* :mod:`.teacher` -- pre-training, adaptation, the from-scratch and label-budget teachers,
  and their cached predictions;
* :mod:`.distill` -- one student run (distilled or from scratch) and ``python -m ecodistill distill``;
* :mod:`.protocol` -- the fair comparison: selection with equal trials, the matrix,
  controls, sweeps (``matrix``);
* :mod:`.headroom` -- the scaling check: does the teacher have something to give?;
* :mod:`.compressed_skill` -- the test skill of int8 / fp16 / pruned students;
* :mod:`.gpu` -- everything GPU-bound in one command (``gpu-run``);
* :mod:`.bench_train` -- training throughput against a synthetic loop.

May import every lower layer: base, store, science parts, training and deployment
(:mod:`ecodistill.deploy`). The real-data benchmark :mod:`ecodistill.fluxnet` sits in
this layer too. Explained in book/generated/02_teacher.ipynb and 03_distill.ipynb.
"""
