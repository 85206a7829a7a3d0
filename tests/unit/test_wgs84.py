"""WGS 84 geodetic -> ECEF and slant ranges, against analytic values of the ellipsoid and an
independent inverse (Bowring's iteration back to geodetic)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from worker.config import default_config_snapshot
from worker.rf import geometry as g


def ecef_to_geodetic(x, y, z):
    """Independent inverse: longitude by atan2, latitude by fixed-point iteration on
    tan(phi) = (z + e^2 N sin phi) / p (converges to machine precision in < 10 steps)."""
    lon = math.atan2(y, x)
    p = math.hypot(x, y)
    phi = math.atan2(z, p * (1 - g.WGS84_E2))
    for _ in range(20):
        n = g.WGS84_A_M / math.sqrt(1 - g.WGS84_E2 * math.sin(phi) ** 2)
        h = p / math.cos(phi) - n
        phi = math.atan2(z, p * (1 - g.WGS84_E2 * n / (n + h)))
    return math.degrees(phi), math.degrees(lon), h


def test_axes_of_the_ellipsoid():
    assert g.geodetic_to_ecef_m(0, 0, 0) == pytest.approx((6_378_137.0, 0.0, 0.0), abs=1e-6)
    assert g.geodetic_to_ecef_m(0, 90, 100)[1] == pytest.approx(6_378_237.0, abs=1e-6)
    x, y, z = g.geodetic_to_ecef_m(90, 0, 0)
    assert z == pytest.approx(6_356_752.314245, abs=1e-5)        # published semi-minor axis b
    assert abs(x) < 1e-6 and abs(y) < 1e-9


def test_45_degrees_analytic():
    # at phi = 45 deg: N = a / sqrt(1 - e^2 / 2), x = y = N cos45 cos45, z = N (1 - e^2) sin45
    n = 6_378_137.0 / math.sqrt(1 - g.WGS84_E2 / 2)
    x, y, z = g.geodetic_to_ecef_m(45, 45, 0)
    assert (x, y) == pytest.approx((n / 2, n / 2), abs=1e-6)
    assert z == pytest.approx(n * (1 - g.WGS84_E2) / math.sqrt(2), abs=1e-6)


@pytest.mark.parametrize("lat, lon, h", [(45.03, 7.27, 600), (-33.9, 151.2, 50), (71.0, -120.0, 3000),
                                         (0.001, 179.999, -100)])
def test_round_trip_through_an_independent_inverse(lat, lon, h):
    back = ecef_to_geodetic(*g.geodetic_to_ecef_m(lat, lon, h))
    assert back == pytest.approx((lat, lon, h), abs=1e-7)


def test_sphere_error_on_the_default_network_is_hundreds_of_metres():
    """The figure that motivates the change: on the default network's longest baselines
    the spherical slant range is off by a few hundred metres (> 1 us of TDOA)."""
    st = default_config_snapshot()["receivers"]["stations"]
    lat = np.array([s["lat"] for s in st])
    lon = np.array([s["lon"] for s in st])
    alt = np.array([s["alt_m"] for s in st], dtype=float)
    i, j = np.triu_indices(len(st), 1)
    wgs = g.ecef_range_m(lat[i], lon[i], alt[i], lat[j], lon[j], alt[j])
    sphere = g.slant_range_m(g.haversine_m(lat[i], lon[i], lat[j], lon[j]), alt[i], alt[j])
    longest = np.argmax(wgs)
    assert wgs[longest] > 140e3
    assert 200 < abs(wgs[longest] - sphere[longest]) < 600
