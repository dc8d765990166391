"""Layout check of a finished figure: labels that print over each other and legends that
cover data.

A referee found labels of the paper's policy frontier printed over each other and
legends hiding bars (issue 19). Both are invisible to tests on the numbers a figure
shows, so this module draws the figure (Agg canvas, the backend the producers save
with) and asks matplotlib for the window extent of every drawn text and legend:
two texts whose boxes overlap, or a legend whose box holds a bar or a plotted point,
are layout faults. Tests run :func:`check_layout` on every plotting function behind a
paper figure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import Collection, LineCollection
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.text import Annotation, Text
from matplotlib.transforms import Bbox


@dataclass
class LayoutReport:
    """What :func:`check_layout` found: overlapping text pairs and (legend, artist)
    pairs where the legend box covers a bar or a data point."""

    overlapping_texts: list[tuple[Text, Text]] = field(default_factory=list)
    covered_by_legend: list[tuple[Legend, Artist]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.overlapping_texts and not self.covered_by_legend

    def describe(self) -> list[str]:
        """One readable line per fault, for assertion messages."""
        lines = [
            f"text {a.get_text()!r} overlaps text {b.get_text()!r}"
            for a, b in self.overlapping_texts
        ]
        lines += [
            f"legend {[t.get_text() for t in leg.get_texts()]} covers {_name(art)}"
            for leg, art in self.covered_by_legend
        ]
        return lines


def _name(artist: Artist) -> str:
    label = artist.get_label()
    kind = type(artist).__name__
    return f"{kind} {label!r}" if label and not str(label).startswith("_") else kind


def _shown(text: Text) -> bool:
    return text.get_visible() and bool(text.get_text().strip())


def _tick_labels(axis: Axis) -> list[Text]:
    # the ticks matplotlib draws: those inside the view interval (a tick outside keeps
    # a label with a position, but it is not drawn)
    out = []
    for tick in axis._update_ticks():
        if not tick.get_visible():
            continue
        out += [t for t in (tick.label1, tick.label2) if t.get_visible()]
    return out


def _axes_texts(ax: Axes) -> list[Text]:
    texts: list[Text] = [ax.title, ax._left_title, ax._right_title]
    for axis in (ax.xaxis, ax.yaxis):
        texts += [axis.label, axis.get_offset_text(), *_tick_labels(axis)]
    texts += list(ax.texts)  # ax.text and ax.annotate
    return texts


def _legends(fig: Figure) -> list[Legend]:
    out = list(fig.legends)
    for ax in fig.axes:
        leg = ax.get_legend()
        if leg is not None:
            out.append(leg)
    return [leg for leg in out if leg.get_visible()]


def _legend_texts(leg: Legend) -> list[Text]:
    return [*leg.get_texts(), leg.get_title()]


def _texts(fig: Figure) -> list[Text]:
    texts: list[Text] = []
    for ax in fig.axes:
        if ax.get_visible():
            texts += _axes_texts(ax)
    texts += list(fig.texts)
    for name in ("_suptitle", "_supxlabel", "_supylabel"):
        t = getattr(fig, name, None)
        if t is not None:
            texts.append(t)
    for leg in _legends(fig):
        texts += _legend_texts(leg)
    seen: set[int] = set()
    out = []
    for t in texts:
        if id(t) not in seen and _shown(t):
            seen.add(id(t))
            out.append(t)
    return out


def _text_box(text: Text, renderer) -> Bbox:
    """The box of the characters; an annotation's own extent would add its arrow."""
    if isinstance(text, Annotation):
        text.update_positions(renderer)
    return Text.get_window_extent(text, renderer)


def _display_points(artist: Artist, ax: Axes) -> np.ndarray:
    """Display coordinates of a line's or a collection's data points inside its axes."""
    if isinstance(artist, Line2D):
        pts = artist.get_transform().transform(artist.get_xydata())
    elif isinstance(artist, LineCollection):
        segs = artist.get_segments()
        xy = np.vstack(segs) if segs else np.empty((0, 2))
        pts = artist.get_transform().transform(xy)
    elif isinstance(artist, Collection) and len(artist.get_offsets()):
        pts = artist.get_offset_transform().transform(artist.get_offsets())
    else:
        return np.empty((0, 2))
    pts = np.asarray(pts, dtype=float).reshape(-1, 2)
    pts = pts[np.isfinite(pts).all(axis=1)]
    return pts[_inside(ax.bbox.frozen(), pts)]


def _inside(box: Bbox, pts: np.ndarray) -> np.ndarray:
    """Which display points lie in ``box`` (Bbox.contains takes one point at a time)."""
    (x0, y0), (x1, y1) = np.sort(box.get_points(), axis=0)
    return (pts[:, 0] >= x0) & (pts[:, 0] <= x1) & (pts[:, 1] >= y0) & (pts[:, 1] <= y1)


def _patch_box(patch: Patch, ax: Axes, renderer) -> Bbox | None:
    """The drawn part of a bar (clipped to its axes), or None for a bar of no area."""
    box = Bbox.intersection(patch.get_window_extent(renderer), ax.bbox.frozen())
    if box is None or box.width <= 0 or box.height <= 0:
        return None
    return box


def _covered(leg: Legend, fig: Figure, renderer) -> list[Artist]:
    box = leg.get_window_extent(renderer)
    hits: list[Artist] = []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        for patch in ax.patches:
            if not patch.get_visible():
                continue
            drawn = _patch_box(patch, ax, renderer)
            if drawn is not None and drawn.overlaps(box):
                hits.append(patch)
        for artist in [*ax.lines, *ax.collections]:
            if not artist.get_visible():
                continue
            pts = _display_points(artist, ax)
            if _inside(box, pts).any():
                hits.append(artist)
    return hits


def check_layout(fig: Figure, tolerance: float = 0.5) -> LayoutReport:
    """Draw ``fig`` and report overlapping texts and legends over data.

    Texts are every visible, non-empty title, axis label, drawn tick label, text and
    annotation of every axes, the figure's own texts, and the legends' entries and
    titles; two of them clash when their window extents overlap by more than
    ``tolerance`` pixels (boxes that only touch are fine). A legend covers data when
    its box overlaps a drawn bar or patch of any axes (bars of zero height draw
    nothing and are skipped) or holds a point of a line or collection (markers, error
    bar ends, scatter points). The figure gets an Agg canvas if it has none.
    """
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    report = LayoutReport()

    texts = _texts(fig)
    boxes = [_text_box(t, renderer).padded(-tolerance) for t in texts]
    for (a, box_a), (b, box_b) in combinations(zip(texts, boxes, strict=True), 2):
        if box_a.overlaps(box_b):
            report.overlapping_texts.append((a, b))

    for leg in _legends(fig):
        report.covered_by_legend += [(leg, art) for art in _covered(leg, fig, renderer)]
    return report
