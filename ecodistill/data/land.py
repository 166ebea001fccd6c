r"""The second simulated land surface (world ``v2``): four soil layers at ERA5's depths,
snow, Growing Season Index phenology driven by root-zone water, NDVI and its observation,
and the reanalysis estimate of the land state that models are given.

Per land cell and day (constants in :data:`LAND_V2_PARAMS`, part of the dataset hash):

* **Snow** (v1): precipitation falls as snow below 0.5 °C; degree-day melt
  :math:`M = \min(S, 3\,\mathrm{mm\,K^{-1}d^{-1}}\,\max(T, 0))`. ERA5's ``sd`` is the
  snow water equivalent in m.
* **Soil water** in the four layers of the ECMWF land model, :math:`\Delta z` = 7, 21, 72
  and 189 cm (ERA5 ``swvl1``-``swvl4``), with the medium-texture hydraulic constants of
  H-TESSEL (Balsamo et al. 2009): saturation :math:`\theta_s` = 0.439, field capacity
  :math:`\theta_{fc}` = 0.347, wilting point :math:`\theta_{pwp}` = 0.151 m³ m⁻³.
  Rain, melt and part of the river inflow infiltrate the top layer (a share bypasses it
  through macropores into layers 2-3); water above field capacity drains to the layer
  below at a rate that slows with depth (:math:`r_k` = 0.5, 0.2, 0.06, 0.004 d⁻¹, the last
  to base flow), and layers exchange water by diffusion below field capacity; what cannot
  infiltrate runs off and is routed downhill as in v1.
* **Evaporation and transpiration**: Priestley-Taylor potential evaporation with FAO-56 net
  radiation (v1). Bare soil evaporates from layer 1; plants transpire
  :math:`PET\,(0.2 + 0.8V)\,\beta` from their roots, with the root-zone availability
  :math:`\beta = \sum_k R_k \beta_k`, :math:`\beta_k = \mathrm{clip}((\theta_k -
  \theta_{pwp}) / (\theta_{cr} - \theta_{pwp}), 0, 1)`, :math:`\theta_{cr} = \theta_{pwp} +
  0.75 (\theta_{fc} - \theta_{pwp})` (the stress function of H-TESSEL) and root fractions
  :math:`R_k` by land cover (grass and crops shallow, forests deep; Zeng 2001).
* **Vegetation** (v1's equations, the root-zone water instead of v1's single bucket):
  :math:`V` relaxes to :math:`GSI_{21}\,\beta` (Jolly et al. 2005) in 12 days when greening
  and 25 when browning; :math:`NDVI = NDVI_{min} + (NDVI_{max} - NDVI_{min}) V`.
* **Observation** (v1): clouds bias NDVI low, :math:`NDVI_{obs} = NDVI - 0.10\,c^2|z_1| +
  0.012\,z_2`, missing on cloudy days and under snow. The best possible prediction of an
  observation from the simulator's state is :math:`NDVI - 0.10\,c^2\sqrt{2/\pi}`
  (``ndvi_bayes``, the ceiling of the data chapter).
* **Reanalysis estimate** (:class:`ReanalysisError`): ERA5's land state is a land model's
  estimate, not the truth. Models get :math:`\hat\theta_k = \theta_k + b_k + e_k(t)`: a
  per-cell bias :math:`b_k \sim N(0.02, 0.03^2)` (reanalyses are too wet over China, Ling et
  al. 2021) and an AR(1) error of standard deviation :math:`\sigma_k` = 0.04, 0.035, 0.03,
  0.025 m³ m⁻³ with e-folding 3, 10, 30, 60 days (ubRMSE above 0.04 at the surface: Ling et
  al. 2021; 0.052 in Jiangsu) -- a top-layer correlation with the truth near the 0.69-0.72
  of land models against 826 sensors (Beck et al. 2021). Snow depth gets a multiplicative
  error of 20 % (e-folding 30 d) and is underestimated with altitude (Stachura & Ustrnul 2025:
  ERA5 snow depth is good below 500 m and too low above).

Explained in book/generated/02_data.ipynb ("Vegetation" and "The land state").
"""
from __future__ import annotations

import numpy as np

from .atmosphere import near_surface_humidity
from .vegetation import LAND_PARAMS, LandModel, ramp, sat_vapour_pressure

LAYER_DEPTHS_M = np.array([0.07, 0.21, 0.72, 1.89], dtype=np.float32)  # ERA5 / H-TESSEL layers
LAND_V2_PARAMS = {
    **LAND_PARAMS,
    "theta_s": 0.439, "theta_fc": 0.347, "theta_pwp": 0.151, "theta_r": 0.03, "stress_frac": 0.75,
    "drain_rates": (0.5, 0.2, 0.06, 0.004), "diffusion": 0.02, "bypass_split": (0.6, 0.4),
    "bias_mean": 0.02, "bias_sd": 0.03, "error_sd": (0.04, 0.035, 0.03, 0.025),
    "error_days": (3.0, 10.0, 30.0, 60.0), "snow_error": 0.2, "snow_error_days": 30.0,
    "snow_altitude_loss": 0.15,
}
LV = LAND_V2_PARAMS
SQRT_2_OVER_PI = float(np.sqrt(2 / np.pi))

#: Root fraction per layer by IGBP class (0 water ... 16 barren): grass, crops and sparse
#: vegetation root shallow, shrubs deeper, forests deepest (after Zeng 2001).
_SHALLOW, _SHRUB, _FOREST = (0.35, 0.45, 0.18, 0.02), (0.2, 0.35, 0.33, 0.12), (0.12, 0.28, 0.38, 0.22)
ROOT_FRACTIONS = np.array([_SHALLOW, _FOREST, _FOREST, _FOREST, _FOREST, _FOREST, _SHRUB, _SHRUB,
                           _SHRUB, _SHRUB, _SHALLOW, _SHRUB, _SHALLOW, _SHALLOW, _SHALLOW, _SHALLOW,
                           _SHALLOW], dtype=np.float32)


class LayeredLand(LandModel):
    """State and daily steps of the v2 land surface on the land cells of one grid (snow,
    routing, phenology and observation as v1's :class:`~ecodistill.data.vegetation.LandModel`).

    Args:
        static: :func:`ecodistill.data.static.static_maps` output.
        daylength: ``(366, nlat)`` hours (from :func:`ecodistill.data.weather.solar`).
    """

    def __init__(self, static, daylength: np.ndarray) -> None:
        super().__init__(static, daylength)
        igbp = static["igbp"].values.ravel()[self.cells]
        self.roots = ROOT_FRACTIONS[igbp]  # (n, 4)
        self.dz_mm = LAYER_DEPTHS_M * 1000.0
        n = self.cells.size
        start = LV["theta_pwp"] + 0.6 * (LV["theta_fc"] - LV["theta_pwp"])
        self.water = np.full((n, 4), start, np.float32) * self.dz_mm  # mm per layer

    @property
    def theta(self) -> np.ndarray:
        """``(n, 4)`` volumetric water [m3 m-3] of the four layers."""
        return self.water / self.dz_mm

    def availability(self) -> np.ndarray:
        """``(n, 4)`` per-layer plant availability :math:`\\beta_k` (0 at wilting point, 1 from
        the critical point up)."""
        crit = LV["theta_pwp"] + LV["stress_frac"] * (LV["theta_fc"] - LV["theta_pwp"])
        return ramp(self.theta, LV["theta_pwp"], crit)

    def step(self, t2m, tp, ssrd, rh, cloud, q_toa, doy) -> dict[str, np.ndarray]:
        """One day on the land cells (all arguments ``(n_land,)``; tp in m, ssrd in J m-2).

        Returns ``theta`` ``(n, 4)`` [m3 m-3], ``sd`` [m water equivalent] and ``snow_mm``,
        ``ndvi_true``, ``rh2m``, ``stress`` (root-zone availability) and ``gsi``.
        """
        t_c = t2m - 273.15
        precip = tp * 1000.0
        snowfall = np.where(t_c < LV["snow_temp"], precip, 0.0)
        melt = np.minimum(self.snow + snowfall, LV["melt_rate"] * np.maximum(t_c, 0.0))
        self.snow = self.snow + snowfall - melt
        dtr = 4.0 + 8.0 * (1.0 - 0.7 * cloud)
        t_min, t_max = t_c - dtr / 2, t_c + dtr / 2
        rh2m = near_surface_humidity(rh, self.theta[:, 0])
        ea = rh2m * sat_vapour_pressure(t_c)
        es = 0.5 * (sat_vapour_pressure(t_max) + sat_vapour_pressure(t_min))
        vpd = np.maximum(es - ea, 0.0) * 1000.0  # Pa
        pet = self._pet(t_c, t_min, t_max, ssrd, q_toa, ea)
        pet = np.where(self.snow > 5.0, 0.3 * pet, pet)
        runoff = self._soil_water((precip - snowfall) + melt, pet)
        ok = self.down >= 0
        self.inflow = np.bincount(self.down[ok], weights=runoff[ok], minlength=runoff.size).astype(np.float32)
        gsi = (ramp(t_min, -2.0, 5.0) * ramp(vpd, 4100.0, 900.0) * ramp(self.daylength[doy - 1], 10.0, 11.0))
        self.gsi_buf[self.day % LV["gsi_days"]] = gsi
        self.day += 1
        gsi21 = self.gsi_buf[:min(self.day, LV["gsi_days"])].mean(0)
        stress = (self.roots * self.availability()).sum(1)
        target = gsi21 * stress
        tau = np.where(target > self.veg, LV["tau_green"], LV["tau_brown"])
        self.veg = (self.veg + (target - self.veg) / tau).astype(np.float32)
        return {"theta": self.theta.astype(np.float32), "sd": (self.snow / 1000.0).astype(np.float32),
                "snow_mm": self.snow.astype(np.float32),
                "ndvi_true": (self.ndvi_lo + self.ndvi_span * self.veg).astype(np.float32),
                "rh2m": rh2m.astype(np.float32), "stress": stress.astype(np.float32),
                "gsi": gsi21.astype(np.float32)}

    def _soil_water(self, water_in: np.ndarray, pet: np.ndarray) -> np.ndarray:
        """Infiltration, drainage, diffusion, evaporation and transpiration of one day; returns
        the runoff [mm] leaving each cell (base flow and the inflow that did not infiltrate)."""
        w, dz = self.water, self.dz_mm
        cap = LV["theta_s"] * dz
        fc = LV["theta_fc"] * dz
        infil = water_in + LV["inflow_infiltration"] * self.inflow
        direct = (1 - LV["bypass"]) * infil
        deep = LV["bypass"] * infil
        w = w.copy()
        w[:, 0] += direct
        w[:, 1] += LV["bypass_split"][0] * deep
        w[:, 2] += LV["bypass_split"][1] * deep
        runoff = (1 - LV["inflow_infiltration"]) * self.inflow
        for k in range(4):  # top down: all water above saturation, a share of it above field capacity
            excess = np.maximum(w[:, k] - cap[k], 0.0)
            drain = excess + LV["drain_rates"][k] * np.maximum(w[:, k] - excess - fc[k], 0.0)
            w[:, k] -= drain
            if k < 3:
                w[:, k + 1] += drain
            else:  # out of the bottom: base flow to the river
                runoff = runoff + drain
        theta = w / dz
        flux = LV["diffusion"] * (theta[:, :-1] - theta[:, 1:]) * np.minimum(dz[:-1], dz[1:])
        w[:, :-1] -= flux
        w[:, 1:] += flux
        avail = ramp(w / dz, LV["theta_pwp"], LV["theta_pwp"] + LV["stress_frac"] * (LV["theta_fc"] - LV["theta_pwp"]))
        demand = pet * (0.2 + 0.8 * self.veg)
        share = self.roots * avail
        transp = demand[:, None] * share
        reserve = np.maximum(w - LV["theta_pwp"] * dz, 0.0)
        transp = np.minimum(transp, reserve)
        w -= transp
        evap = LV["soil_evap"] * pet * (1 - 0.5 * self.veg) * ramp(w[:, 0] / dz[0], LV["theta_r"], LV["theta_fc"])
        w[:, 0] -= np.minimum(evap, np.maximum(w[:, 0] - LV["theta_r"] * dz[0], 0.0))
        self.water = w.astype(np.float32)
        return runoff.astype(np.float32)

    def bayes(self, ndvi_true: np.ndarray, cloud: np.ndarray) -> np.ndarray:
        """The expected observation given the state: ``ndvi_true - cloud_bias c² sqrt(2/π)``."""
        return (ndvi_true - LV["cloud_bias"] * cloud**2 * SQRT_2_OVER_PI).astype(np.float32)


class ReanalysisError:
    """The error of a reanalysis land state (see the module docstring): per-cell biases and
    AR(1) errors of the four soil layers, and a multiplicative snow error.

    Args:
        orography: ``(n,)`` m of the land cells; rng: the error's own random stream.
    """

    def __init__(self, orography: np.ndarray, rng: np.random.Generator) -> None:
        n = orography.size
        self.rng = rng
        self.bias = (LV["bias_mean"] + LV["bias_sd"] * rng.standard_normal((n, 4))).astype(np.float32)
        self.rho = np.exp(-1.0 / np.array(LV["error_days"])).astype(np.float32)
        self.sd = np.array(LV["error_sd"], dtype=np.float32)
        self.err = (self.sd * rng.standard_normal((n, 4))).astype(np.float32)
        self.rho_snow = float(np.exp(-1.0 / LV["snow_error_days"]))
        self.snow_err = (LV["snow_error"] * rng.standard_normal(n)).astype(np.float32)
        self.altitude = (1.0 - LV["snow_altitude_loss"] * np.clip(orography / 1000.0, 0.0, 2.0)).astype(np.float32)

    def estimate(self, theta: np.ndarray, sd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One day's reanalysis ``(swvl (n, 4), sd (n,))`` from the true state."""
        n = theta.shape[0]
        z = self.rng.standard_normal((n, 5), dtype=np.float32)
        self.err = self.rho * self.err + self.sd * np.sqrt(1 - self.rho**2) * z[:, :4]
        self.snow_err = self.rho_snow * self.snow_err + LV["snow_error"] * np.sqrt(1 - self.rho_snow**2) * z[:, 4]
        swvl = np.clip(theta + self.bias + self.err, 0.01, LV["theta_s"])
        snow = sd * self.altitude * np.exp(self.snow_err - 0.5 * LV["snow_error"] ** 2)
        return swvl.astype(np.float32), snow.astype(np.float32)
