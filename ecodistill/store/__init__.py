"""Layer 2, the result store: what a run leaves behind, and how it is checked.

* :mod:`.runs` -- one tidy CSV per run with its config beside it (a completion marker),
  timings, run ids, the protocol's selection record;
* :mod:`.integrity` -- SHA-256 sidecars, checked JSON / NumPy / checkpoint readers;
* :mod:`.archive` -- packing ``results/<profile>/`` into a few checked files and restoring them.

May import the base modules (:mod:`ecodistill.config`, :mod:`ecodistill.utils`, ...) only:
the science parts, training and experiments above all write through it.
Explained in book/intro.md ("How results flow into the book").
"""
