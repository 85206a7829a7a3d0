"""Reference values of the link budget, delay and GDOP, and receiver/transmitter placement."""

from __future__ import annotations

import math

import numpy as np
import pytest

from worker.rf import geometry, link

KM = 1000.0


def test_fspl_itu_p525_reference():
    assert link.fspl_db(10 * KM, 145.0) == pytest.approx(95.677, abs=0.001)  # "95.67" in the spec
    # 20 dB per decade of distance and of frequency.
    assert link.fspl_db(100 * KM, 145.0) - link.fspl_db(10 * KM, 145.0) == pytest.approx(20.0)
    assert link.fspl_db(10 * KM, 1450.0) - link.fspl_db(10 * KM, 145.0) == pytest.approx(20.0)


def test_noise_floor_reference():
    assert link.noise_power_dbm(12500.0, 6.0) == pytest.approx(-127.03, abs=0.005)
    assert link.noise_power_dbm(50000.0, 6.0) == pytest.approx(-127.03 + 10 * math.log10(4), abs=0.005)


def test_toa_reference():
    assert link.toa_s(30 * KM) == pytest.approx(100.07e-6, abs=0.005e-6)


def test_haversine_and_slant_range():
    # One degree of latitude on the R = 6371008.8 m sphere.
    assert geometry.haversine_m(45.0, 7.0, 46.0, 7.0) == pytest.approx(6371008.8 * math.pi / 180, rel=1e-12)
    assert geometry.slant_range_m(3000.0, 0.0, 4000.0) == pytest.approx(5000.0)


def _ring(n, offset_deg=0.0):
    az = np.radians(offset_deg + np.arange(n) * 360.0 / n)
    return np.sin(az), np.cos(az)


def test_gdop_reference_vectors():
    assert geometry.gdop_from_unit_vectors(*_ring(3)) == pytest.approx(math.sqrt(5 / 3), abs=1e-9)
    assert geometry.gdop_from_unit_vectors(*_ring(4, 17.0)) == pytest.approx(math.sqrt(5 / 4), abs=1e-9)


def test_gdop_geographic_equal_range():
    # Receivers 20 km from the transmitter at 0/120/240 degrees (equal range, small area).
    d = 20 * KM / geometry.M_PER_DEG
    lat0, lon0 = 45.0, 8.0
    az = np.radians([0.0, 120.0, 240.0])
    rx_lat = lat0 + d * np.cos(az)
    rx_lon = lon0 + d * np.sin(az) / math.cos(math.radians(lat0))
    assert geometry.gdop(lat0, lon0, rx_lat, rx_lon) == pytest.approx(math.sqrt(5 / 3), abs=0.01)


def test_gdop_degenerate_is_inf():
    # Collinear along a meridian (a great circle) with the transmitter on the line: all
    # bearings exactly north or south, H^T H singular.
    assert geometry.gdop(45.0, 8.0, [45.1, 45.2, 45.3], [8.0, 8.0, 8.0]) == math.inf
    assert geometry.gdop(45.0, 8.0, [44.8, 44.9, 45.1, 45.2], [8.0, 8.0, 8.0, 8.0]) == math.inf
    # Along a parallel the bearings are not exactly collinear on the sphere: huge but finite.
    assert geometry.gdop(45.0, 8.0, [45.0, 45.0, 45.0, 45.0], [7.8, 7.9, 8.1, 8.2]) > 100
    assert geometry.gdop_from_unit_vectors(*_ring(2)) == math.inf
    assert geometry.gdop_from_unit_vectors(np.array([1.0]), np.array([0.0])) == math.inf
    # Nearly collinear is finite but large, not an exception.
    az = np.radians([80.0, 90.0, 100.0])
    g = geometry.gdop_from_unit_vectors(np.sin(az), np.cos(az))
    assert math.isfinite(g) and g > 10


@pytest.mark.parametrize("count", [1, 3, 4, 5, 7, 8, 13, 20, 37])
def test_hexagonal_placement_exact_count(count):
    area = (44.3, 45.6, 7.0, 9.3)
    for s in range(5):
        lat, lon = geometry.hexagonal_placement(np.random.default_rng(s), count, *area)
        assert lat.shape == (count,) and lon.shape == (count,)
        assert np.all((lat >= area[0]) & (lat <= area[1]) & (lon >= area[2]) & (lon <= area[3]))
        assert len(set(zip(lat.round(9), lon.round(9), strict=True))) == count


def test_hexagonal_is_a_lattice():
    lat, lon = geometry.hexagonal_placement(np.random.default_rng(1), 12, 44.3, 45.6, 7.0, 9.3)
    d = geometry.haversine_m(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
    nn = np.sort(d, axis=1)[:, 1]
    # Every receiver's nearest neighbour sits at the same lattice spacing (within 2 %).
    assert nn.max() / nn.min() < 1.02


def test_transmitter_placement_inside_and_outside():
    g = np.random.default_rng(3)
    rx_lat, rx_lon = np.array([44.5, 45.5, 45.0]), np.array([7.0, 8.0, 9.0])
    res = [geometry.place_transmitter(g, rx_lat, rx_lon, 0.7, 20.0) for _ in range(2000)]
    inside = np.array([r[2] for r in res])
    lat = np.array([r[0] for r in res])
    lon = np.array([r[1] for r in res])
    in_box = (lat >= 44.5) & (lat <= 45.5) & (lon >= 7.0) & (lon <= 9.0)
    assert np.array_equal(inside, in_box)
    assert abs(inside.mean() - 0.7) < 0.04
    margin_deg = 20 * KM / geometry.M_PER_DEG
    assert lat.min() >= 44.5 - margin_deg - 1e-9 and lat.max() <= 45.5 + margin_deg + 1e-9
    assert lat[~inside].min() < 44.5 and lat[~inside].max() > 45.5
