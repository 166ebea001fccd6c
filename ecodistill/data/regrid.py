r"""Regular latitude-longitude grids and area-conservative regridding between them.

The project grid has ``nlat`` x ``nlon`` cells with centres

.. math:: \varphi_i = -90 + (i + \tfrac12)\,\tfrac{180}{n_{lat}}, \qquad
          \lambda_j = -180 + (j + \tfrac12)\,\tfrac{360}{n_{lon}},

latitude ascending, longitude in [-180, 180). A coarse cell's value is the area-weighted
mean of the fine cells it overlaps (first-order conservative remapping, as in ESMF/CDO
``remapcon``): on a sphere the area of a lat-lon cell is :math:`R^2\,\Delta\lambda\,
\Delta(\sin\varphi)`, so the overlap weights factorise into a latitude matrix (overlaps in
:math:`\sin\varphi`) and a longitude matrix (overlaps in degrees), and one regrid is two
small matrix products. Missing values (NaN) are left out of the mean.

Explained in book/generated/02_data.ipynb ("Static maps").
"""
from __future__ import annotations

import numpy as np


def grid_centres(nlat: int, nlon: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell-centre latitudes ``(nlat,)`` (ascending) and longitudes ``(nlon,)`` in degrees."""
    if nlat < 1 or nlon < 1:
        raise ValueError(f"grid {nlat}x{nlon}: both sizes must be positive")
    lat = -90.0 + (np.arange(nlat) + 0.5) * 180.0 / nlat
    lon = -180.0 + (np.arange(nlon) + 0.5) * 360.0 / nlon
    return lat, lon


def edges_from_centres(centres: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Cell edges ``(n + 1,)`` of ascending, evenly spaced ``centres``, clipped to [lo, hi].

    A grid that holds the poles as centres (ERA5's 721 rows) gets half-width polar cells.
    """
    c = np.asarray(centres, dtype=np.float64)
    if c.ndim != 1 or c.size < 2:
        raise ValueError("need at least two cell centres along each axis")
    if not np.all(np.diff(c) > 0):
        raise ValueError("cell centres must be strictly ascending (sort the coordinate first)")
    mid = 0.5 * (c[1:] + c[:-1])
    edges = np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])
    return np.clip(edges, lo, hi)


def overlap_matrix(src_edges: np.ndarray, dst_edges: np.ndarray, sine: bool) -> np.ndarray:
    """``(n_dst, n_src)`` overlap lengths of 1-d cells (in sin(lat) when ``sine``)."""
    s = np.sin(np.deg2rad(src_edges)) if sine else np.asarray(src_edges, dtype=np.float64)
    d = np.sin(np.deg2rad(dst_edges)) if sine else np.asarray(dst_edges, dtype=np.float64)
    lo = np.maximum(d[:-1, None], s[None, :-1])
    hi = np.minimum(d[1:, None], s[None, 1:])
    return np.clip(hi - lo, 0.0, None)


def lon_overlap_matrix(src_edges: np.ndarray, dst_edges: np.ndarray) -> np.ndarray:
    """Longitude overlaps ``(n_dst, n_src)`` with wrap-around (source shifted by ±360°)."""
    return sum(overlap_matrix(np.asarray(src_edges) + shift, dst_edges, sine=False)
               for shift in (-360.0, 0.0, 360.0))


class Regridder:
    """Conservative regridding from one regular lat-lon grid to another.

    Args:
        src_lat, src_lon: ascending source cell centres (degrees; lon in any 360° range).
        dst_lat, dst_lon: ascending destination cell centres.

    Call it on ``(..., n_src_lat, n_src_lon)`` arrays; NaN cells do not count.
    """

    def __init__(self, src_lat, src_lon, dst_lat, dst_lon) -> None:
        src_lon = np.asarray(src_lon, dtype=np.float64)
        self.wlat = overlap_matrix(edges_from_centres(src_lat, -90, 90),
                                   edges_from_centres(dst_lat, -90, 90), sine=True)
        step = src_lon[1] - src_lon[0]
        span = src_lon[-1] - src_lon[0] + step
        if abs(span - 360.0 - step) < 1e-3:
            raise ValueError(f"source longitudes {src_lon[0]:g}..{src_lon[-1]:g} hold the seam column twice; "
                             "drop the last column (ecodistill.data.readers.standardise does)")
        if abs(span - 360.0) > 1e-3:
            raise ValueError(f"source longitudes cover {span:.3f}°, not the whole globe; "
                             "regridding needs a global grid")
        src_e = edges_from_centres(src_lon, -1e9, 1e9)
        dst_e = edges_from_centres(dst_lon, -1e9, 1e9)
        self.wlon = lon_overlap_matrix(src_e, dst_e)
        if (self.wlat.sum(1) <= 0).any() or (self.wlon.sum(1) <= 0).any():
            raise ValueError("a destination cell overlaps no source cell: check the grids")

    def __call__(self, field: np.ndarray, weights: np.ndarray | None = None,
                 min_cover: float = 0.0) -> np.ndarray:
        """Area-weighted mean of ``field`` (optionally times ``weights``) per destination cell.

        Args:
            field: ``(..., n_src_lat, n_src_lon)``.
            weights: optional ``(n_src_lat, n_src_lon)`` extra weights (e.g. land fraction).
            min_cover: destination cells whose valid (weighted) area fraction is below this
                become NaN.

        Returns:
            ``(..., n_dst_lat, n_dst_lon)`` float64.
        """
        f = np.asarray(field, dtype=np.float64)
        valid = np.isfinite(f).astype(np.float64)
        if weights is not None:
            valid = valid * np.asarray(weights, dtype=np.float64)
        num = self.wlat @ (np.where(valid > 0, f, 0.0) * valid) @ self.wlon.T
        den = self.wlat @ valid @ self.wlon.T
        full = self.wlat @ np.ones(f.shape[-2:]) @ self.wlon.T
        with np.errstate(invalid="ignore", divide="ignore"):
            out = num / den
        out[(den <= 0) | (den < min_cover * full)] = np.nan
        return out


def block_mean(a: np.ndarray, fy: int, fx: int) -> np.ndarray:
    """Mean over non-overlapping ``fy`` x ``fx`` blocks of the last two axes, NaN ignored
    (all-NaN blocks give NaN)."""
    *lead, ny, nx = a.shape
    if ny % fy or nx % fx:
        raise ValueError(f"shape {ny}x{nx} is not divisible by the block {fy}x{fx}")
    b = a.reshape(*lead, ny // fy, fy, nx // fx, fx)
    valid = np.isfinite(b)
    total = np.where(valid, b, 0.0).sum(axis=(-3, -1), dtype=np.float64)
    count = valid.sum(axis=(-3, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)
