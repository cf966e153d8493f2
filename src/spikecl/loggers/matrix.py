"""The accuracy matrix as a picture: rows are "after learning task i", columns "accuracy on task j"."""

from __future__ import annotations

import io

import numpy as np
from matplotlib.figure import Figure


def matrix_figure(matrix: np.ndarray, title: str) -> Figure:
    """Heat map of ``matrix`` with each cell's value written in it (accuracies in [0, 1] on a fixed scale)."""
    m = np.atleast_2d(np.asarray(matrix, dtype=np.float64))
    rows, cols = m.shape
    fig = Figure(figsize=(1.0 + 0.6 * max(cols, 4), 0.8 + 0.5 * max(rows, 4)), layout="constrained")
    ax = fig.add_subplot()
    bounded = np.nanmin(m, initial=0.0) >= 0 and np.nanmax(m, initial=0.0) <= 1
    image = ax.imshow(m, cmap="viridis", vmin=0 if bounded else None, vmax=1 if bounded else None)
    fig.colorbar(image, ax=ax)
    if rows * cols <= 400:  # values stay legible up to a 20 x 20 matrix
        for (i, j), value in np.ndenumerate(m):
            ax.text(j, i, "" if np.isnan(value) else f"{value:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if not bounded or value < 0.6 else "black")
    ax.set_xlabel("evaluated task j")
    ax.set_ylabel("after learning task i (0: pretrained)")
    ax.set_title(title)
    return fig


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def rgb_array(fig: Figure) -> np.ndarray:
    """The figure rendered as an RGB array [H, W, 3] (uint8)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
