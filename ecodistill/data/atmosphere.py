r"""The second simulated atmosphere (world ``v2``): weather whose evolution can be learned.

World ``v1`` (:mod:`ecodistill.data.weather`) drew its synoptic systems as advected AR(1)
fields that forgot 22-40 % of their variance every day (e-folding 2-4 days), so even a
perfect forecaster could explain only 37-61 % of tomorrow's pressure and humidity anomalies
from today's maps; a ridge forecast beat persistence by 13-30 % in RMSE. Real weather is
the opposite: day-to-day anomalies are about as persistent (lag-1 autocorrelation of Z500
about 0.7, :data:`ecodistill.data.realism.TARGETS`), but their evolution is mostly
deterministic -- systems *travel* -- so a learned model beats persistence by 60-70 % at day
3 on WeatherBench (Rasp & Thuerey 2021).

Here the same climatology (:class:`ecodistill.data.weather.Climate`) carries systems that
live longer and travel faster:

* **Pressure**: the advected, Rossby-dispersive spectral field of
  :mod:`ecodistill.data.spectral` with damping time :math:`\tau_p` = 25 d (v1: 4 d), so
  the daily innovation holds :math:`1 - e^{-2/\tau_p}` = 8 % of the variance and the rest
  is the propagated state, and a steering flow 1.6 times v1's (jet maximum 29 m/s): the
  local day-to-day correlation stays near 0.85 because the systems pass by.
* **Temperature anomalies**: advected by the anomaly wind and forced by its advection of
  the climatological gradient (v1), relaxing in :math:`\tau_T` = 4 d with a random forcing
  of 0.4 K (v1: 1.5 K): tomorrow's anomaly follows mostly from today's wind and temperature.
* **Humidity**: a tracer moving with the steering flow, :math:`\tau_q` = 8 d (v1: 2 d); the
  45-day mode enters humidity with 15 % of v1's weight and the long-lived pressure systems
  with 5/8 of it, bringing monthly anomalies of radiation and VPD to the FLUXNET sites' size.
* **Wet and dry spells**: a slow, large mode (:math:`\tau` = 120 d, 2500 km) multiplies
  precipitation by :math:`e^{0.7 w - 0.245}` (mean 1), the season-to-season rainfall
  anomalies (teleconnections) that v1 lacked; monthly precipitation anomalies reach the
  sites' share of variance.
* **Near-surface humidity**: 2-m dew point ``d2m`` from the column humidity and the top
  soil layer (a wet surface moistens the air above it), so VPD follows from ``t2m`` and
  ``d2m`` as in ERA5.

These values were chosen by comparing the statistics of
:data:`ecodistill.data.realism.TARGETS` (fixed beforehand from real data and the
literature) on eight simulated years, never by any distillation result.
Every other equation is v1's (wind from the pressure gradient with drag, cloud, rain,
radiation, upper air); every constant is in :data:`ATMOSPHERE_PARAMS` (part of the dataset
hash). Explained in book/generated/02_data.ipynb ("Weather").
"""
from __future__ import annotations

import numpy as np

from .spectral import DAY, Smoother, lat_mixing, mix_rows, phase_factors
from .weather import WEATHER_PARAMS, Climate, WeatherGenerator

ATMOSPHERE_PARAMS = {
    **WEATHER_PARAMS,
    "p_tau": 25.0, "q_tau": 8.0, "q_scale_km": 800.0, "T_tau": 4.0, "T_noise": 0.4, "T_adv": 0.7,
    "slow_rh": 0.015, "slow_t": 1.0, "slow_p": 200.0, "steer_gain": 1.6, "p_rh": 0.05,
    "wet_tau": 120.0, "wet_scale_km": 2500.0, "wet_amp": 0.7,
    "rh2m_base": 0.12, "rh2m_col": 0.85, "rh2m_soil": 0.10,
}
A = ATMOSPHERE_PARAMS

__all__ = ["ATMOSPHERE_PARAMS", "Climate", "Atmosphere", "dew_point"]


def dew_point(t_k: np.ndarray, rh: np.ndarray) -> np.ndarray:
    """Dew point [K] of air at ``t_k`` [K] and relative humidity ``rh`` (0-1): the inverse of
    the Tetens saturation vapour pressure (FAO-56 eq. 11)."""
    t_c = t_k - 273.15
    g = np.log(np.clip(rh, 1e-3, 1.0)) + 17.27 * t_c / (t_c + 237.3)
    return 273.15 + 237.3 * g / (17.27 - g)


class Atmosphere(WeatherGenerator):
    """Daily weather of world ``v2``, one block of days at a time (state carried between
    blocks); v1's :class:`~ecodistill.data.weather.WeatherGenerator` with longer-lived,
    travelling systems (:data:`ATMOSPHERE_PARAMS`).

    Args:
        climate: the :class:`~ecodistill.data.weather.Climate` of the grid.
        rng: the generator's random stream (deterministic per seed).
    """

    def __init__(self, climate: Climate, rng: np.random.Generator) -> None:  # noqa: D107 (v1's, with A)
        self.c, self.rng = climate, rng
        lat, lon = climate.lat, climate.lon
        self.smooth = {k: Smoother(lat, lon, A[f"{k}_scale_km"]) for k in ("p", "q", "slow", "wet")}
        nlon = len(lon)
        steer = climate.steer * A["steer_gain"]
        self.phase_p = phase_factors(lat, nlon, steer, rossby=True, meridional_km=A["rossby_l_km"],
                                     max_retro=A["max_retro"])
        self.phase_q = phase_factors(lat, nlon, steer, rossby=False)
        self.phase_slow = phase_factors(lat, nlon, steer / 3.0, rossby=False)
        self.phase_wet = phase_factors(lat, nlon, steer / 6.0, rossby=False)
        self.mix = lat_mixing(lat, A["mixing_km"])
        self.fields = {"p": (A["p_tau"], self.phase_p), "q": (A["q_tau"], self.phase_q),
                       "slow": (A["slow_tau"], self.phase_slow), "wet": (A["wet_tau"], self.phase_wet)}
        self.scale = {k: self._pilot_scale(k) for k in self.fields}
        self.state = {k: self.smooth[k].noise_spectrum(rng, 1)[0] for k in self.fields}
        self.t_anom = np.zeros(climate.shape, dtype=np.float32)

    def block(self, doy: np.ndarray) -> dict[str, np.ndarray]:
        """Weather of consecutive days with day-of-year ``doy`` (1-366): dict of ``(n, nlat, nlon)``
        arrays (ERA5 names, plus ``_rh``, ``_cloud``, ``_q_toa`` for the land surface)."""
        c, idx = self.c, np.asarray(doy) - 1
        p_n, q_n, slow, wet = (self._field(k, idx) for k in ("p", "q", "slow", "wet"))
        midlat = np.exp(-((np.abs(c.lat) - 45) / 20) ** 2)[None, :, None].astype(np.float32)
        msl = c.msl[idx] + c.p_amp[idx][:, :, None] * p_n + A["slow_p"] * midlat * slow
        u, v = self._wind(msl)
        ua, va = self._wind(msl - c.msl[idx])
        t_anom = self._temperature_anomalies(idx, ua, va) + A["slow_t"] * midlat * slow
        rh = np.clip(c.rh[idx] + 0.10 * q_n - A["p_rh"] * p_n - A["slow_rh"] * slow, 0.03, 0.99)
        cloud = 1.0 / (1.0 + np.exp(-(rh - A["cloud_rh"]) / A["cloud_width"]))
        t_col = c.t_sl[idx] + t_anom
        tcwv = rh * 62.0 * np.exp(0.065 * (t_col - 300.0)) * np.exp(-c.orog / 2500.0)
        uplift = np.maximum(0.0, u * c.ohx + v * c.ohy)
        rain = (A["rain_k"] * tcwv * np.maximum(0.0, (rh - A["rain_rh"]) / (1 - A["rain_rh"]))
                + A["oro_k"] * tcwv * rh * uplift / 0.01) * np.exp(A["wet_amp"] * wet - 0.5 * A["wet_amp"] ** 2)
        q_toa = c.q_toa[idx][:, :, None]
        ssrd = q_toa * (0.25 + 0.5 * (1 - cloud)) * (1 + 0.08 * c.orog / 1000.0) * DAY
        t_cloud = -3.0 * (cloud - 0.5) * c.land * (q_toa / 400.0 - 0.3)
        t2m = t_col - A["lapse"] * c.orog + t_cloud
        t850 = c.t_ann + 0.7 * (c.t_sl[idx] - c.t_ann) - 9.5 + 0.85 * t_anom
        z500 = A["R_d"] * (t850 - 12.0) * np.log(msl / 50000.0)
        r850 = 100.0 * np.clip(1.08 * rh - 0.03 + 0.04 * q_n, 0.01, 1.0)
        f32 = np.float32
        return {"t2m": t2m.astype(f32), "tp": (rain / 1000.0).astype(f32), "ssrd": ssrd.astype(f32),
                "u10": (A["wind10"] * u).astype(f32), "v10": (A["wind10"] * v).astype(f32),
                "msl": msl.astype(f32), "z500": z500.astype(f32), "t850": t850.astype(f32),
                "r850": r850.astype(f32), "tcwv": tcwv.astype(f32),
                "_rh": rh.astype(f32), "_cloud": cloud.astype(f32), "_q_toa": q_toa[..., 0].astype(f32)}

    def _temperature_anomalies(self, idx: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Advected temperature anomalies forced by the anomaly wind's advection of the
        climatological gradient [K], relaxing in ``T_tau`` days (v1's with A's constants)."""
        c = self.c
        forcing = -A["T_adv"] * DAY * (u * c.dtdx[idx] + v * c.dtdy[idx])
        eps = np.fft.irfft(self.smooth["p"].noise_spectrum(self.rng, len(idx)), n=c.shape[1], axis=-1)
        rho = float(np.exp(-1.0 / A["T_tau"]))
        noise = A["T_noise"] * np.sqrt(1 - rho**2) * eps
        out = np.empty_like(u)
        t = self.t_anom
        for d in range(len(idx)):
            spec = mix_rows(self.mix, np.fft.rfft(t, axis=-1) * self.phase_q[idx[d]] * rho)
            t = (np.fft.irfft(spec, n=c.shape[1], axis=-1) + forcing[d] + noise[d]).astype(np.float32)
            out[d] = t
        self.t_anom = t
        return out


def near_surface_humidity(rh_column: np.ndarray, theta1: np.ndarray) -> np.ndarray:
    """2-m relative humidity (0-1) from the column's and the top soil layer's volumetric
    water ``theta1`` [m3 m-3]: wet soil moistens the air above it."""
    return np.clip(A["rh2m_base"] + A["rh2m_col"] * rh_column + A["rh2m_soil"] * (theta1 - 0.25), 0.05, 1.0)
