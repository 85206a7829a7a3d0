"""Terrain sets in the RF core (issue 11 item 3): the DEM kernels against an independent slow
reference, ITM point-to-point over synthetic terrain (flat = area mode with delta h 0, a
ridge, a valley, voids), and the generator's terrain path."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import config_with

from tests import terrain_tiles as tt
from worker.config import GenerationConfig, Propagation
from worker.rf import generate_samples, itm, rng
from worker.rf import terrain as T
from worker.rf.generate import check_terrain, check_truth, draw_truth
from worker.rf.geometry import EARTH_RADIUS_M, haversine_m
from worker.rf.propagation import PropagationParams

CELLS = [(45, 7), (45, 8)]


def params(**prop) -> PropagationParams:
    base = {"model": "itm", "terrain": None, "terrain_irregularity_m": 90, "surface_refractivity_n": 301,
            "climate": "continental_temperate", "ground_permittivity": 15, "ground_conductivity_s_m": 0.005,
            "polarization": "vertical", "rx_siting": "random", "tx_siting": "random",
            "nlos_excess_delay_mean_s": 1e-6}
    return PropagationParams.from_config(Propagation.from_normalized({**base, **prop}))


# --------------------------------------------------------------------------- slow reference
# Written from the module's description only: per-tile lookup of every sample, bilinear
# weights, renormalization over valid corners, square-ring search; points of the great
# circle by the destination-point formula (initial bearing + angular distance), not by
# interpolating unit vectors.


class Reference:
    def __init__(self, tiles: dict, n: int):
        self.tiles = {k: np.asarray(v, dtype=np.int64) for k, v in tiles.items()}
        self.n = n
        self.lat_top = max(k[0] for k in tiles) + 1
        self.lon_west = min(k[1] for k in tiles)
        self.fills = 0            # elevations that needed the ring search

    def raw(self, gr: int, gc: int) -> int:
        m = self.n - 1
        for (lat0, lon0), a in self.tiles.items():
            r = gr - (self.lat_top - lat0 - 1) * m
            c = gc - (lon0 - self.lon_west) * m
            if 0 <= r <= m and 0 <= c <= m:
                return int(a[r, c])
        return T.VOID

    def elevation(self, lat: float, lon: float) -> float:
        m = self.n - 1
        y = (self.lat_top - lat) * m
        x = (lon - self.lon_west) * m
        r0, c0 = math.floor(y), math.floor(x)
        fy, fx = y - r0, x - c0
        num = wsum = 0.0
        for dr, wr in ((0, 1 - fy), (1, fy)):
            for dc, wc in ((0, 1 - fx), (1, fx)):
                w = wr * wc
                v = self.raw(r0 + dr, c0 + dc)
                if w > 0 and v != T.VOID:
                    num += w * v
                    wsum += w
        if wsum > 0:
            return num / wsum
        self.fills += 1
        gr, gc = math.floor(y + 0.5), math.floor(x + 0.5)
        if self.raw(gr, gc) != T.VOID:
            return float(self.raw(gr, gc))
        for k in range(1, T.VOID_SEARCH_SAMPLES + 1):
            ring = [self.raw(gr + i, gc + j) for i in range(-k, k + 1) for j in range(-k, k + 1)
                    if max(abs(i), abs(j)) == k]
            valid = [v for v in ring if v != T.VOID]
            if valid:
                return sum(valid) / len(valid)
        return 0.0

    def profile(self, lat1, lon1, lat2, lon2, k: int) -> np.ndarray:
        p1, p2 = math.radians(lat1), math.radians(lat2)
        dl = math.radians(lon2 - lon1)
        theta = math.atan2(math.sin(dl) * math.cos(p2),
                           math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl))
        delta = float(haversine_m(lat1, lon1, lat2, lon2)) / EARTH_RADIUS_M
        out, filled = [], []
        for i in range(k + 1):
            s = delta * i / k
            pa = math.asin(math.sin(p1) * math.cos(s) + math.cos(p1) * math.sin(s) * math.cos(theta))
            la = math.radians(lon1) + math.atan2(math.sin(theta) * math.sin(s) * math.cos(p1),
                                                 math.cos(s) - math.sin(p1) * math.sin(pa))
            before = self.fills
            out.append(self.elevation(math.degrees(pa), (math.degrees(la) + 180) % 360 - 180))
            filled.append(self.fills > before)
        return np.array(out), np.array(filled)


@pytest.fixture(scope="module")
def holey():
    """Rolling hills over three SRTM3 tiles (N45E007, N45E008, N44E007; N44E008 missing),
    with a 40 x 40 void block and a 200 x 200 one (its centre is beyond the ring search)."""
    def voids(la, lo, a):
        if (la, lo) == (45, 7):
            a[400:440, 500:540] = T.VOID
        if (la, lo) == (45, 8):
            a[300:500, 300:500] = T.VOID
    cells = [(45, 7), (45, 8), (44, 7)]
    dem = tt.make_dem(tt.hills(), cells, voids=voids)
    tiles = {}
    for la, lo in cells:
        a = tt.tile_array(la, lo, tt.hills())
        voids(la, lo, a)
        tiles[(la, lo)] = a
    return dem, Reference(tiles, tt.SRTM3)


def test_elevation_matches_the_reference(holey):
    dem, ref = holey
    g = np.random.default_rng(3)
    m = tt.SRTM3 - 1
    points = [(float(a), float(b)) for a, b in zip(g.uniform(44.0, 46.0, 300), g.uniform(7.0, 8.6, 300), strict=True)]
    points += [(46.0 - 420 / m, 7.0 + 520 / m), (46.0 - 401.3 / m, 7.0 + 538.6 / m),   # in / at the edge of the small void
               (46.0 - 400 / m, 8.0 + 400 / m), (46.0 - 330.2 / m, 8.0 + 470.7 / m),   # deep in / inside the large void
               (45.0, 8.0), (45.0, 8.5), (44.5, 8.0), (44.5, 8.0 + 3 / m),              # edges, the missing tile
               (44.999, 8.9), (46.0, 7.0), (44.0, 7.0), (45.5, 7.0 + 600 / m)]          # corners, a sample point
    lat = np.array([p[0] for p in points])
    lon = np.array([p[1] for p in points])
    got = T.elevation_m(dem, lat, lon)
    want = np.array([ref.elevation(a, b) for a, b in points])
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    assert got[-10] == 0.0        # deep in the missing tile, farther than the ring search: sea level


def test_srtm1_tiles_are_read_alike():
    """3601 x 3601 tiles: the same kernels, the sample spacing of 1 arcsec."""
    terrain = tt.hills(seed=5)
    dem = tt.make_dem(terrain, [(45, 7)], n=tt.SRTM1)
    ref = Reference({(45, 7): tt.tile_array(45, 7, terrain, tt.SRTM1)}, tt.SRTM1)
    g = np.random.default_rng(4)
    lat, lon = g.uniform(45.0, 46.0, 200), g.uniform(7.0, 8.0, 200)
    np.testing.assert_allclose(T.elevation_m(dem, lat, lon), [ref.elevation(a, b) for a, b in zip(lat, lon, strict=True)],
                               rtol=0, atol=1e-6)
    assert dem.resolution_arcsec == 1 and dem.spacing_m == pytest.approx(30.888, abs=0.001)


@pytest.mark.parametrize("a, b", [((45.2, 7.1), (45.8, 8.9)), ((45.9, 8.7), (45.05, 7.02)), ((45.5, 7.3), (45.5, 7.31)),
                                  ((45.01, 8.5), (45.99, 8.5))])
def test_profile_follows_the_great_circle_at_the_tile_spacing_up_to_the_cap(holey, a, b):
    dem, ref = holey
    z, spacing = T.profile_m(dem, *a, *b)
    ground = float(haversine_m(*a, *b))
    k = z.size - 1
    # the tile spacing, at most MAX_PROFILE_INTERVALS intervals (155 km and 113 km paths: 600)
    assert k == max(2, min(math.ceil(ground / dem.spacing_m), T.MAX_PROFILE_INTERVALS))
    assert spacing == pytest.approx(ground / k)
    assert spacing <= max(dem.spacing_m, ground / T.MAX_PROFILE_INTERVALS) * (1 + 1e-12)
    # between exact nodes the path is linear in lat/lon: < 0.05 m off the great circle, i.e.
    # elevation errors of (slope < 0.3) x 0.05 m. Points deep in a void take the mean of a
    # ring around their nearest sample, which a centimetre may change: within a metre there.
    want, filled = ref.profile(*a, *b, k)
    np.testing.assert_allclose(z[~filled], want[~filled], rtol=0, atol=0.02)
    np.testing.assert_allclose(z[filled], want[filled], rtol=0, atol=1.0)
    assert z[0] == pytest.approx(T.elevation_m(dem, [a[0]], [a[1]])[0])
    assert z[-1] == pytest.approx(T.elevation_m(dem, [b[0]], [b[1]])[0])


@pytest.fixture(scope="module")
def srtm1():
    """One SRTM1 tile of rolling hills, its Dem and references for its tiles and for its
    coarse level (every third sample)."""
    a = tt.tile_array(45, 7, tt.hills(seed=5), tt.SRTM1)
    return (tt.make_dem(tt.hills(seed=5), [(45, 7)], n=tt.SRTM1), Reference({(45, 7): a}, tt.SRTM1),
            Reference({(45, 7): a[::T.LEVEL_STRIDE, ::T.LEVEL_STRIDE]}, tt.SRTM3))


def test_srtm1_profiles_read_the_coarse_level_from_three_samples_apart(srtm1):
    """An SRTM1 profile whose spacing is 3 samples (92.7 m) or more is read from the set's
    coarse level, the SRTM3 grid of the same tiles (every third sample), with both end
    points (the ground under the antennas) from the tiles; finer profiles from the tiles."""
    dem, full, coarse = srtm1
    assert dem.num_tiles == 1 and len(dem.tiles) == 2 and dem.tiles[1].size == tt.SRTM3 ** 2
    a, b = (45.10, 7.15), (45.80, 7.90)                            # 98 km: 600 intervals of 163 m
    z, spacing = T.profile_m(dem, *a, *b)
    assert z.size - 1 == T.MAX_PROFILE_INTERVALS and spacing >= T.LEVEL_STRIDE * dem.spacing_m
    want, _ = coarse.profile(*a, *b, T.MAX_PROFILE_INTERVALS)
    np.testing.assert_allclose(z[1:-1], want[1:-1], rtol=0, atol=0.02)
    np.testing.assert_allclose(z[[0, -1]], T.elevation_m(dem, [a[0], b[0]], [a[1], b[1]]), rtol=0, atol=1e-9)
    assert np.max(np.abs(z[1:-1] - full.profile(*a, *b, T.MAX_PROFILE_INTERVALS)[0][1:-1])) > 0.1  # not the tiles
    # the same path at the tile spacing, and a short path (15 km, 486 intervals of 31 m): the tiles
    k = math.ceil(float(haversine_m(*a, *b)) / dem.spacing_m)
    z, _ = T.profile_m(dem, *a, *b, n_intervals=k)
    np.testing.assert_allclose(z, full.profile(*a, *b, k)[0], rtol=0, atol=0.02)
    c = (45.10, 7.15 + 15e3 / (111195.08 * math.cos(math.radians(45.1))))
    z, spacing = T.profile_m(dem, *a, *c)
    assert spacing <= dem.spacing_m
    np.testing.assert_allclose(z, full.profile(*a, *c, z.size - 1)[0], rtol=0, atol=0.02)


def test_capped_profiles_stay_close_to_the_full_resolution_profile():
    """The profile rule (at most MAX_PROFILE_INTERVALS intervals; an SRTM1 set's coarse
    level from 3 samples apart) against the full-resolution profile (every SRTM1 sample
    spacing, 30.9 m) on rough terrain with detail at every scale (fractal, 350 m relief):
    ITM point-to-point medians of 300 links of 3-110 km, transmitter 1.5-10 m, receiver
    10 m, both on the ground. Stated tolerance: median |difference| <= 0.7 dB, 90 % within
    4 dB, mean within +/- 0.7 dB, LOS the same on >= 99 % of the links, and closer to the
    full resolution than an SRTM3 set of the same ground (every third sample) at its own
    spacing. (ITM's location variability drawn per link has sigma ~9 dB at 145 MHz.)"""
    tile = tt.rough_tile()
    dem1 = T.Dem.from_tiles("rough1", "1" * 64, {(45, 7): tile})
    dem3 = T.Dem.from_tiles("rough3", "3" * 64, {(45, 7): tile[::3, ::3]})
    p = params()
    g = np.random.default_rng(11)
    diff, diff3, same_los, short = [], [], 0, 0
    for _ in range(300):
        a, b = g.uniform([45.02, 7.02], [45.98, 7.98], (2, 2))
        ground = float(haversine_m(*a, *b))
        if ground < 3e3:
            continue
        h = float(g.uniform(1.5, 10.0))
        gen = T.terrain_link_losses(dem1, p, 145.0, a[0], a[1], h, [b[0]], [b[1]], 10.0)
        ref = {}
        for name, dem in (("full", dem1), ("srtm3", dem3)):
            z, spacing = T.profile_m(dem, *a, *b, n_intervals=math.ceil(ground / dem.spacing_m))
            ref[name] = itm.itm_p2p(z, spacing, 145.0, h, 10.0)
        diff.append(gen.median_db[0] - ref["full"].median_basic_loss_db)
        diff3.append(ref["srtm3"].median_basic_loss_db - ref["full"].median_basic_loss_db)
        same_los += bool(gen.los[0]) == ref["full"].profile_line_of_sight
        if ground <= T.MAX_PROFILE_INTERVALS * dem1.spacing_m:     # not capped: the same profile
            short += 1
            assert diff[-1] == pytest.approx(0.0, abs=1e-9)
    d, d3 = np.abs(diff), np.abs(diff3)
    assert short > 20 and len(d) > 280
    assert np.median(d) <= 0.7 and np.percentile(d, 90) <= 4.0 and abs(np.mean(diff)) <= 0.7, \
        (np.median(d), np.percentile(d, 90), np.mean(diff))
    assert same_los >= 0.99 * len(d)
    assert np.median(d) < np.median(d3) and np.percentile(d, 90) < np.percentile(d3, 90)


def test_a_sample_on_a_tile_edge_is_read_from_the_tile_that_has_it():
    """Tiles share edges: the north row of N45 is the south row of N46; with N46 missing
    that row still comes from N45 (and the west column of E008 from E007)."""
    dem = tt.make_dem(lambda la, lo: 1000.0 * (la - 45.0) + 10.0 * (lo - 7.0), [(45, 7)])
    e = T.elevation_m(dem, [46.0, 45.5, 46.0], [7.5, 8.0, 8.0])
    np.testing.assert_allclose(e, [1000.0 + 5.0, 500.0 + 10.0, 1000.0 + 10.0], atol=0.5)


# --------------------------------------------------------------------------- ITM over terrain


def test_flat_terrain_equals_area_mode_with_zero_delta_h():
    """Flat terrain at sea level: ITM point-to-point over the profile is ITM area mode with
    delta h = 0 (random siting: effective heights = antenna heights). Tolerance 0.1 dB: a
    sampled profile finds its horizons on sample points (93 m apart here), not at the
    continuous tangent point, which moves the horizon distance and angle by up to one
    spacing: a few hundredths of a dB in the diffraction region (measured <= 0.05 dB with
    SRTM3, <= 0.02 dB with SRTM1), nothing in line of sight. LOS agrees everywhere: over a
    smooth earth the ray clears the profile exactly where area mode is line of sight."""
    dem = tt.make_dem(tt.flat(0.0), [(45, 7), (45, 8), (45, 9)])
    p = params()
    lons = 7.05 + np.array([0.01, 0.05, 0.1, 0.2, 0.25, 0.3, 0.35, 0.4, 0.6, 1.0, 1.5, 2.0, 2.5])
    modes = set()
    for h_tx, h_rx in ((1.5, 10.0), (10.0, 10.0), (2.0, 30.0)):
        r = T.terrain_link_losses(dem, p, 145.0, 45.5, 7.05, h_tx, np.full(lons.size, 45.5), lons, h_rx)
        assert r.tx_alt_m == h_tx and np.all(r.rx_alt_m == h_rx)
        for k in range(lons.size):
            a = itm.itm_area(145.0, r.ground_m[k], h_tx, h_rx, terrain_irregularity_m=0.0)
            modes.add(a.mode)
            assert r.median_db[k] == pytest.approx(a.median_basic_loss_db, abs=0.1), (h_tx, h_rx, r.ground_m[k])
            assert bool(r.los[k]) == (a.mode == "line_of_sight")
    assert modes == {"line_of_sight", "diffraction", "troposcatter"}


def test_the_ridge_adds_diffraction_loss_and_moving_behind_it_flips_los():
    """A 300 m ridge (north-south, at 7.5 E) on a plain at 200 m; transmitter at 7.3 E.
    Receivers in front of it keep their line of sight and the flat plain's loss; behind it
    they lose the line of sight and gain diffraction loss (ITM's: ~10-16 dB here, its
    diffraction weighs the knife edge against a smooth earth by the profile's delta h)."""
    ridge = tt.make_dem(tt.ridge(200.0, 300.0, 7.5), CELLS)
    plain = tt.make_dem(tt.flat(200.0), CELLS)
    p = params()
    lons = np.array([7.40, 7.47, 7.53, 7.56, 7.60])
    lat = np.full(lons.size, 45.5)
    over = T.terrain_link_losses(ridge, p, 145.0, 45.5, 7.3, 10.0, lat, lons, 10.0)
    flat = T.terrain_link_losses(plain, p, 145.0, 45.5, 7.3, 10.0, lat, lons, 10.0)
    assert list(over.los) == [True, True, False, False, False]
    assert list(flat.los) == [True] * 5
    extra = over.median_db - flat.median_db
    assert np.all(np.abs(extra[:2]) < 3.0), extra            # in front: as on the plain
    assert np.all(extra[2:] > 8.0), extra                     # behind: diffraction over the crest
    # the transmitter's antenna stands on the ground: plain 200 m (+ 10 m)
    assert over.tx_alt_m == pytest.approx(210.0, abs=1.0)
    # the same receiver on the crest sees everything
    crest = T.terrain_link_losses(ridge, p, 145.0, 45.5, 7.3, 10.0, [45.5], [7.5], 10.0)
    assert crest.los[0] and crest.rx_alt_m[0] == pytest.approx(510.0, abs=1.0)


def test_across_a_valley_the_rims_see_each_other_beyond_the_smooth_earth_horizon():
    """Two 1.5 m / 10 m antennas 30 km apart on the rims of a 400 m deep valley: line of
    sight, and less loss than on a plateau (area mode: d_Ls ~18 km, diffraction)."""
    gorge = tt.make_dem(tt.valley(600.0, 400.0, 7.6, half_width_m=10e3), CELLS)
    plateau = tt.make_dem(tt.flat(600.0), CELLS)
    p = params()
    args = (p, 145.0, 45.5, 7.4, 1.5, [45.5], [7.4 + 30e3 / (111195.08 * math.cos(math.radians(45.5)))], 10.0)
    v = T.terrain_link_losses(gorge, *args)
    f = T.terrain_link_losses(plateau, *args)
    assert v.ground_m[0] == pytest.approx(30e3, rel=1e-3)
    assert v.los[0] and not f.los[0]
    assert v.median_db[0] < f.median_db[0] - 10.0


def test_voids_and_missing_tiles_do_not_crash(holey):
    """Paths through a void block, through the large void and across the missing tile:
    finite profiles and losses; a set made only of voids reads as sea level."""
    dem, _ref = holey
    p = params()
    lat = np.array([45.62, 45.72, 44.3, 44.5])
    lon = np.array([7.5, 8.35, 8.5, 7.5])
    r = T.terrain_link_losses(dem, p, 145.0, 45.65, 7.35, 5.0, lat, lon, 10.0, z=[0.3, -1.0, 2.0, 0.0])
    for arr in (r.median_db, r.loss_db, r.rx_alt_m, r.slant_m):
        assert np.all(np.isfinite(arr))
    assert np.all(r.median_db > 80.0)
    empty = T.Dem.from_tiles("void", "0" * 64, {(45, 7): np.full((1201, 1201), T.VOID, dtype=np.int16)})
    assert T.elevation_m(empty, [45.5], [7.5])[0] == 0.0
    r = T.terrain_link_losses(empty, p, 145.0, 45.2, 7.2, 5.0, [45.8], [7.9], 10.0)
    assert np.isfinite(r.median_db[0]) and r.tx_alt_m == 5.0


def test_validating_wrappers_name_the_argument():
    dem = tt.make_dem(tt.flat(), [(45, 7)])
    p = params()
    with pytest.raises(ValueError, match="rx_height_agl_m"):
        T.terrain_link_losses(dem, p, 145.0, 45.5, 7.5, 2.0, [45.6], [7.6], 0.1)
    with pytest.raises(ValueError, match="freq_mhz"):
        T.terrain_link_losses(dem, p, 5.0, 45.5, 7.5, 2.0, [45.6], [7.6], 10.0)
    with pytest.raises(ValueError, match="lat"):
        T.elevation_m(dem, [95.0], [7.0])
    with pytest.raises(ValueError, match="dem"):
        T.elevation_m("not a dem", [45.0], [7.0])
    with pytest.raises(ValueError, match="3601 x 3601 or all 1201"):
        T.Dem.from_tiles("x", "0" * 64, {(45, 7): np.zeros((100, 100), dtype=np.int16)})
    with pytest.raises(ValueError, match="n_intervals"):
        T.profile_m(dem, 45.1, 7.1, 45.2, 7.2, n_intervals=1)


# --------------------------------------------------------------------------- generator

STATIONS = [(45.40, 7.60), (45.60, 7.80), (45.45, 8.20), (45.55, 8.40)]


def terrain_config(base: dict, dem: T.Dem, terrain=None, *, stations=STATIONS, alt_offset_m=0.0, **overrides) -> dict:
    """A normalized-like config using ``dem`` (fixed stations at DEM + 10 m unless offset)."""
    ground = T.elevation_m(dem, [s[0] for s in stations], [s[1] for s in stations])
    template = base["receivers"]["stations"][0]      # every per-station key of the normalized config
    st = [{**template, "id": f"s{i}", "name": f"s{i}", "lat": la, "lon": lo, "alt_m": float(g) + 10.0 + alt_offset_m,
           "height_agl_m": 10, "antenna": {"pattern": "omni", "gain_dbi": 0}}
          for i, ((la, lo), g) in enumerate(zip(stations, ground, strict=True))]
    prop = {**base["propagation"], "terrain": dem.name, "terrain_sha256": dem.sha256}
    return config_with(base, propagation=prop, receivers={"mode": "fixed", "stations": st}, **overrides)


@pytest.fixture(scope="module")
def hilly():
    return tt.make_dem(tt.hills(base_m=400.0, amplitude_m=300.0, seed=2), CELLS, name="hilly", sha256="a" * 64)


def test_generated_samples_use_the_terrain(default_config_dict, hilly):
    cfg = GenerationConfig.from_normalized(terrain_config(default_config_dict, hilly))
    assert cfg.propagation.terrain == "hilly" and cfg.propagation.terrain_sha256 == "a" * 64
    b = generate_samples(cfg, 4, 0, 8, want_iq=False, terrain=hilly)
    p = PropagationParams.from_config(cfg.propagation)
    for k in range(len(b)):
        r = T.terrain_link_losses(hilly, p, 145.0, b.tx_lat[k], b.tx_lon[k], b.tx_height_agl_m[k], b.rx_lat[k],
                                  b.rx_lon[k], b.rx_height_agl_m[k], rx_alt_m=b.rx_alt_m[k])
        # the transmitter stands on the ground; medians and LOS are the point-to-point ones
        assert b.tx_alt_m[k] == pytest.approx(T.elevation_m(hilly, [b.tx_lat[k]], [b.tx_lon[k]])[0]
                                              + b.tx_height_agl_m[k])
        np.testing.assert_allclose(b.path_loss_median_db[k], r.median_db, rtol=1e-12)
        np.testing.assert_array_equal(b.los[k], r.los)
        np.testing.assert_allclose(b.distance_m[k], r.slant_m, rtol=1e-12)
    # the same indices in other batches: the same values (deterministic per index)
    again = generate_samples(cfg, 4, 3, 5, want_iq=False, terrain=hilly)
    np.testing.assert_array_equal(again.path_loss_db, b.path_loss_db[3:])
    np.testing.assert_array_equal(again.rssi_dbm, b.rssi_dbm[3:])


def test_terrain_makes_a_difference(default_config_dict, hilly):
    """Same seed, same draws: with the terrain set the medians differ from area mode's."""
    d = terrain_config(default_config_dict, hilly)
    area = config_with(d, propagation={**d["propagation"], "terrain": None})
    del area["propagation"]["terrain_sha256"]
    with_t = draw_truth(GenerationConfig.from_normalized(d), rng.stream(1, 0, 0, rng.STREAM_TRUTH), terrain=hilly)
    without = draw_truth(GenerationConfig.from_normalized(area), rng.stream(1, 0, 0, rng.STREAM_TRUTH))
    assert (with_t.tx_lat, with_t.tx_lon) == (without.tx_lat, without.tx_lon)
    assert np.all(np.abs(with_t.path_loss_median_db - without.path_loss_median_db) > 1e-6)


def test_random_receivers_stand_on_the_ground(default_config_dict):
    dem = tt.make_dem(tt.ridge(150.0, 600.0, 7.9), CELLS, name="ridge")
    d = terrain_config(default_config_dict, dem)
    d["receivers"] = {"mode": "random", "count_min": 4, "count_max": 6, "alt_m": 200, "height_agl_m": 12,
                      "area": {"lat_min": 45.3, "lat_max": 45.7, "lon_min": 7.4, "lon_max": 8.5},
                      "antenna": {"pattern": "omni", "gain_dbi": 0}}
    cfg = GenerationConfig.from_normalized(d)
    for i in range(5):
        t = draw_truth(cfg, rng.stream(2, i, 0, rng.STREAM_TRUTH), terrain=dem)
        np.testing.assert_allclose(t.rx_alt_m, T.elevation_m(dem, t.rx_lat, t.rx_lon) + 12.0, rtol=1e-12)


def test_a_station_altitude_that_contradicts_the_dem_is_refused(default_config_dict, hilly):
    ok = GenerationConfig.from_normalized(terrain_config(default_config_dict, hilly, alt_offset_m=45.0))
    check_terrain(ok, hilly)                  # within the tolerance
    bad = GenerationConfig.from_normalized(terrain_config(default_config_dict, hilly, alt_offset_m=-80.0))
    with pytest.raises(T.TerrainError, match=r"station 's0' .*alt_m - height_agl_m .*terrain set 'hilly'.*-80\.0 m"):
        generate_samples(bad, 1, 0, 1, want_iq=False, terrain=hilly)


def test_the_terrain_set_must_be_the_configs(default_config_dict, hilly):
    cfg = GenerationConfig.from_normalized(terrain_config(default_config_dict, hilly))
    with pytest.raises(T.TerrainError, match="uses terrain set 'hilly'.*pass terrain="):
        generate_samples(cfg, 1, 0, 1, want_iq=False)
    with pytest.raises(T.TerrainError, match="uses terrain set 'hilly'"):
        draw_truth(cfg, rng.stream(1, 0, 0, rng.STREAM_TRUTH))
    other = T.Dem.from_tiles("hilly", "b" * 64, {(45, 7): np.zeros((1201, 1201), dtype=np.int16)})
    with pytest.raises(T.TerrainError, match="sha256"):
        generate_samples(cfg, 1, 0, 1, want_iq=False, terrain=other)
    area = GenerationConfig.from_normalized(default_config_dict)
    with pytest.raises(T.TerrainError, match="uses no terrain set"):
        generate_samples(area, 1, 0, 1, want_iq=False, terrain=hilly)


def test_early_rejection_changes_nothing(default_config_dict, hilly):
    """The generator stops an attempt over a terrain set once it cannot be accepted; the
    accepted attempts, their truth and the rejection counts are those of complete attempts."""
    cfg = GenerationConfig.from_normalized(terrain_config(default_config_dict, hilly))
    b = generate_samples(cfg, 9, 0, 6, want_iq=False, terrain=hilly)
    stopped = 0
    for k in range(6):
        rejections: dict[str, int] = {}
        for a in range(cfg.max_attempts):
            full = draw_truth(cfg, rng.stream(9, k, a, rng.STREAM_TRUTH), terrain=hilly)
            early = draw_truth(cfg, rng.stream(9, k, a, rng.STREAM_TRUTH), terrain=hilly, reject_early=True)
            reason = check_truth(cfg, full)
            assert check_truth(cfg, early) == reason
            stopped += int(np.isnan(early.snr_db).any())
            if reason is None:
                np.testing.assert_array_equal(early.snr_db, full.snr_db)
                break
            rejections[reason] = rejections.get(reason, 0) + 1
        assert (b.attempts[k], b.rejections[k]) == (a + 1, rejections)
        np.testing.assert_array_equal(b.path_loss_median_db[k], full.path_loss_median_db)
        np.testing.assert_array_equal(b.true_snr_db[k], full.snr_db)
    assert stopped > 0          # the shortcut was taken
