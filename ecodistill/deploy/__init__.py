"""Layer 5, deployment: what happens to a trained network on its way to a small CPU.

* :mod:`.compress` -- fp16 / int8 quantization, structured pruning, ONNX export and its
  numerical check (every function returns a new model or file);
* :mod:`.bench` -- latency, FLOPs and bytes per map of teacher, students and their
  compressed variants (``python -m ecodistill bench``; runs unchanged on a Raspberry Pi as
  ``python -m ecodistill.deploy.bench``);
* :mod:`.pi` -- the Raspberry Pi latency *projection* (a roofline range, never a measurement).

May import the base modules, the store, the science parts and training; the experiments
that score compressed students (:mod:`ecodistill.experiments.compressed_skill`) sit above.
Explained in book/generated/05_pi_timings.ipynb.
"""
