"""The methods figure (book/generated/04_results.ipynb, "The protocol"): how the teacher's
predictions reach the students, the two arms of the comparison and the controls.

Drawn from the protocol's structure alone (no numbers), so it is the same at every profile.
"""
from __future__ import annotations

import matplotlib.pyplot as plt

from .base import INIT_COLORS, setup

#: (x, y, text, colour) of each box, in axes coordinates of a 0..10 x 0..6 canvas.
BOXES = {
    "data": (1.2, 4.9, "weather + static maps\n(inputs, every year)", "0.9"),
    "labels": (1.2, 2.9, "observed NDVI\n(training years; noisy,\ncloud gaps)", "0.9"),
    "teacher": (4.0, 4.9, "teacher (AFNO)\npre-trained on next-day\nweather, adapted to NDVI", "0.8"),
    "pred": (7.0, 4.9, "cached teacher predictions\n(training + unlabelled\nextra years)", "0.8"),
    "scratch": (4.0, 1.5, "scratch arm\nD(s, y): truth loss and\nlearning rate searched", INIT_COLORS["scratch"]),
    "distilled": (7.0, 2.9, "distilled arm\nα·D(s, t) + (1 − α)·D(s, y):\nα, loss, learning rate searched",
                  INIT_COLORS["distilled"]),
    "controls": (6.9, 0.12, ("controls: α = 0 with the distilled arm's settings\n(teacher-free) · no extra years · "
                 "noise-free targets\n· twice the epochs · 1, 3, 10 label years\n(teacher of all labels or of the same labels)"),
                 "0.93"),
    "eval": (9.35, 1.6, "test year\nonce", "0.9"),
}
ARROWS = [("data", "teacher"), ("labels", "teacher"), ("teacher", "pred"), ("pred", "distilled"),
          ("labels", "scratch"), ("labels", "distilled"),
          ("distilled", "eval"), ("scratch", "eval"), ("controls", "eval")]


def methods_figure() -> plt.Figure:
    """Teacher -> cached predictions -> students: the scratch and the distilled arm, each with
    the same search (equal trial counts, equal optimizer steps), the controls, and the test
    year scored once for every reported run."""
    setup()
    fig, ax = plt.subplots(figsize=(8.0, 4.2))
    ax.set_xlim(0, 10.2)
    ax.set_ylim(-0.5, 6)
    ax.set_axis_off()
    text = {}
    for key, (x, y, label, colour) in BOXES.items():
        light = colour not in (INIT_COLORS["scratch"], INIT_COLORS["distilled"])
        text[key] = ax.text(x, y, label, ha="center", va="center", fontsize=8,
                            color="black" if light else "white",
                            bbox={"boxstyle": "round,pad=0.45", "fc": colour, "ec": "0.3", "lw": 0.6})
    fig.canvas.draw()  # box extents are known only after drawing
    for start, end in ARROWS:
        ax.annotate("", xy=(0.5, 0.5), xycoords=text[end], xytext=(0.5, 0.5), textcoords=text[start],
                    arrowprops={"arrowstyle": "->", "color": "0.35", "lw": 0.9, "shrinkA": 12,
                                "shrinkB": 12, "patchA": text[start].get_bbox_patch(),
                                "patchB": text[end].get_bbox_patch()})
    ax.text(5.1, 5.95, "both arms: same inputs, same seeds, same optimizer steps, the same number "
            "of validation trials", ha="center", va="top", fontsize=7.5, style="italic", color="0.3")
    return fig
