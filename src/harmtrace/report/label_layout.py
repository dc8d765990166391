"""Labels for points that print clear of each other and of the data.

Fixed offsets put the labels of nearby points on top of each other (the policy
frontier of the paper, issue 19: ``observe`` and ``block_high`` both sit near the
origin, and two threshold ends often share a point). :func:`place_point_labels` tries,
for each label in turn, a fixed list of offsets around its point, nearest first, and
keeps the first whose box stays inside the axes and overlaps neither an already placed
label nor a plotted point or line; a label that had to move away from its point gets a
thin leader line. The search is deterministic, so figures stay byte-stable. Call it
after the figure's final layout (``tight_layout``): it measures the texts in display
space.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import Collection
from matplotlib.text import Annotation, Text
from matplotlib.transforms import Bbox

# directions around the point, preferred first: the diagonals (right-up first), then
# up, down, right, left, then the steep and the flat in-between directions
_DIRECTIONS = (
    (1, 1), (1, -1), (-1, 1), (-1, -1), (0, 1), (0, -1), (1, 0), (-1, 0),
    (2, 1), (2, -1), (-2, 1), (-2, -1), (1, 2), (1, -2), (-1, 2), (-1, -2),
)  # fmt: skip


def _side(d: int) -> int:
    return (d > 0) - (d < 0)


_HA = {1: "left", 0: "center", -1: "right"}
_VA = {1: "bottom", 0: "center", -1: "top"}


def _segment_points(xy: np.ndarray, step: float) -> np.ndarray:
    """Display points along a polyline, every ``step`` pixels (NaN breaks the line)."""
    out = [xy[np.isfinite(xy).all(axis=1)]]
    for a, b in pairwise(xy):
        if not (np.isfinite(a).all() and np.isfinite(b).all()):
            continue
        n = int(np.hypot(*(b - a)) // step)
        if n > 1:
            t = np.linspace(0.0, 1.0, n + 1)[1:-1, None]
            out.append(a + t * (b - a))
    return np.vstack(out) if out else np.empty((0, 2))


def data_points(ax: Axes, step: float = 3.0) -> np.ndarray:
    """Display coordinates of what the axes plot: line vertices and points along the
    lines, and the offsets of collections (scatter points)."""
    pts = [np.empty((0, 2))]
    for line in ax.lines:
        if line.get_visible():
            xy = line.get_transform().transform(np.asarray(line.get_xydata(), dtype=float))
            pts.append(_segment_points(xy, step) if line.get_linestyle() != "None" else xy)
    for coll in ax.collections:
        if coll.get_visible() and isinstance(coll, Collection) and len(coll.get_offsets()):
            pts.append(coll.get_offset_transform().transform(coll.get_offsets()))
    out = np.vstack(pts)
    return out[np.isfinite(out).all(axis=1)]


def _hits(box: Bbox, pts: np.ndarray) -> int:
    """How many of the display points lie in ``box``."""
    (x0, y0), (x1, y1) = np.sort(box.get_points(), axis=0)
    return int(
        ((pts[:, 0] >= x0) & (pts[:, 0] <= x1) & (pts[:, 1] >= y0) & (pts[:, 1] <= y1)).sum()
    )


def _leader(start: np.ndarray, box: Bbox, px: float) -> np.ndarray:
    """Display points every 2 points along the leader line from ``start`` to the
    nearest point of the label's box."""
    end = np.array([np.clip(start[0], box.x0, box.x1), np.clip(start[1], box.y0, box.y1)])
    n = max(int(np.hypot(*(end - start)) // (2 * px)), 2)
    return start + np.linspace(0.0, 1.0, n)[1:, None] * (end - start)


def _leader_clash(start: np.ndarray, box: Bbox, obstacles: np.ndarray, placed, px: float):
    """Crossings of the leader line: plotted points (and earlier leaders) within 1.5
    points of it, and labels placed before that it runs through."""
    line = _leader(start, box, px)
    line = line[np.hypot(*(line - start).T) > 4 * px]  # clear of the point's own marker
    if not len(line):
        return 0
    crossings = 0
    if len(obstacles):
        d = np.hypot(*(line[:, None, :] - obstacles[None, :, :]).transpose(2, 0, 1))
        crossings += int((d.min(axis=0) < 1.5 * px).sum())
    crossings += 20 * sum(_hits(p, line) > 0 for p in placed)
    return crossings


def _box(ann: Annotation, renderer) -> Bbox:
    ann.update_positions(renderer)
    return Text.get_window_extent(ann, renderer)


def _set_offset(ann: Annotation, dx: int, dy: int, r: float) -> None:
    """Move ``ann`` ``r`` points in direction ``(dx, dy)``, its box on the far side."""
    ann.xyann = (dx * r, dy * r)
    ann.set_ha(_HA[_side(dx)])
    ann.set_va(_VA[_side(dy)])


def _best_offset(
    probe: Annotation,
    renderer,
    own: np.ndarray,
    others: np.ndarray,
    placed: list[Bbox],
    inside: Bbox,
    distances: Sequence[float],
    pad: float,
    px: float,
) -> tuple[int, int, float]:
    """The first free ``(dx, dy, distance)`` for ``probe``, nearest ring first, else the
    least bad one (weights as in :func:`place_point_labels`)."""
    best: tuple[int, int, int, float] | None = None  # (clash, dx, dy, distance)
    for r in distances:
        for dx, dy in _DIRECTIONS:
            _set_offset(probe, dx, dy, r)
            box = _box(probe, renderer).padded(pad * px)
            clash = 1000 * (not inside.contains(box.x0, box.y0))
            clash += 1000 * (not inside.contains(box.x1, box.y1))
            clash += 100 * sum(box.overlaps(p) for p in placed)
            clash += 5 * _hits(box, others)  # worse than a leader crossing a line
            if r > distances[0]:
                clash += _leader_clash(own, box, others, placed, px)
            if best is None or clash < best[0]:
                best = (clash, dx, dy, r)
            if clash == 0:
                break
        if best is not None and best[0] == 0:
            break
    assert best is not None
    _, dx, dy, r = best
    return dx, dy, r


def _leader_props(own: np.ndarray, box: Bbox, px: float) -> dict:
    """A thin leader that leaves the label at the point of its box nearest to the
    labelled point (matplotlib's default, the middle of the box, crosses long labels)."""
    near = _leader(own, box, px)[-1]
    relpos = ((near[0] - box.x0) / box.width, (near[1] - box.y0) / box.height)
    return {
        "arrowstyle": "-",
        "lw": 0.4,
        "color": "0.45",
        "shrinkA": 0,
        "shrinkB": 2,
        "relpos": relpos,
    }


def place_point_labels(
    ax: Axes,
    labels: Sequence[tuple[str, tuple[float, float]]],
    fontsize: float = 6,
    distances: Sequence[float] = (3, 8, 14, 20, 28, 38, 50, 64, 80),
    pad: float = 2.0,
) -> list[Annotation]:
    """Annotate each ``(text, (x, y))`` (data coordinates) at the first free offset.

    Offsets (in points) run over ``distances`` and sixteen directions around the point;
    a candidate is free when its box, grown by ``pad`` points, lies inside the axes and
    overlaps no label placed before it and no plotted point or line, and its leader
    line crosses nothing. Labels are placed in the order given, so the more important
    ones go first. A label with no free candidate takes the least bad one (leaving the
    axes weighs most, then covering a placed label, then covering data, then a leader
    crossing a line), which
    :func:`harmtrace.report.figure_checks.check_layout` would then report. Labels
    beyond the nearest ring get a thin leader line to their point.
    """
    fig = ax.figure
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    fig.canvas.draw()  # final limits and layout: the search works in display space
    renderer = fig.canvas.get_renderer()
    px = fig.dpi / 72.0
    inside = ax.bbox.frozen().padded(-pad * px)
    obstacles = data_points(ax)
    placed: list[Bbox] = []
    out = []
    for text, xy in labels:
        if not np.isfinite(xy).all():
            continue  # a point matplotlib does not draw gets no label either
        own = ax.transData.transform(xy)
        # the label's own point never counts against it
        others = obstacles[~np.all(np.isclose(obstacles, own, rtol=0, atol=0.5), axis=1)]
        probe = ax.annotate(text, xy, xytext=(0, 0), textcoords="offset points", fontsize=fontsize)
        dx, dy, r = _best_offset(probe, renderer, own, others, placed, inside, distances, pad, px)
        _set_offset(probe, dx, dy, r)
        box = _box(probe, renderer)
        probe.remove()
        leader = _leader_props(own, box, px)
        ann = ax.annotate(
            text,
            xy,
            xytext=(dx * r, dy * r),
            textcoords="offset points",
            fontsize=fontsize,
            ha=_HA[_side(dx)],
            va=_VA[_side(dy)],
            arrowprops=leader if r > distances[0] else None,
        )
        box = _box(ann, renderer)
        placed.append(box.padded(pad * px))
        if r > distances[0]:  # later labels keep off this leader line too
            obstacles = np.vstack([obstacles, _leader(own, box, px)])
        out.append(ann)
    return out
