"""The attempt kernel (worker.rf.attempts, issue 11 item 9) against the Python attempt loop:
for fixed layouts with propagation the generator runs its attempts in one Numba kernel and
re-draws only the accepted one. The accepted attempt, the rejection counts (and the order
of their keys) and therefore every sample's bytes must be those of the Python loop: each
attempt drawn from numpy's own SeedSequence / SFC64, ``draw_truth``, ``check_truth``."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import config_with

from tests import terrain_tiles as tt
from worker.config import GenerationConfig
from worker.rf import attempts as A
from worker.rf import generate as G
from worker.rf import generate_samples, rng
from worker.rf import terrain as T
from worker.rf.generate import GenerationCancelled, GenerationError


def numpy_stream(seed: int, idx: int, attempt: int) -> np.random.Generator:
    """The truth stream as generator 1.0.0 built it: numpy's SeedSequence, no fastrng."""
    ss = np.random.SeedSequence([rng.seed_to_uint64(seed), idx, attempt, rng.STREAM_TRUTH])
    return np.random.Generator(np.random.SFC64(ss))


def slow_attempts(cfg: GenerationConfig, seed: int, idx: int, terrain=None):
    """(accepted attempt or -1, rejections dict, accepted Truth): the Python loop."""
    pc = G._prepare(cfg)
    rej: dict[str, int] = {}
    for k in range(cfg.max_attempts):
        t = G.draw_truth(cfg, numpy_stream(seed, idx, k), pc, terrain, reject_early=True)
        reason = G.check_truth(cfg, t)
        if reason is None:
            return k, rej, t
        rej[reason] = rej.get(reason, 0) + 1
    return -1, rej, None


def assert_same_verdicts(cfg: GenerationConfig, seed: int, indices, terrain=None) -> dict[str, int]:
    """Fast and slow loops agree on every index; returns the total rejections."""
    assert A.applies(cfg)
    pc = G._prepare(cfg)
    total: dict[str, int] = {}
    for idx in indices:
        k, rej, t = slow_attempts(cfg, seed, idx, terrain)
        if k < 0:
            with pytest.raises(GenerationError) as err:
                G._accepted_attempt(cfg, pc, seed, idx, terrain, None)
            assert list(err.value.rejections.items()) == list(rej.items()), idx
            assert err.value.attempts == cfg.max_attempts
        else:
            fk, ft, frej = G._accepted_attempt(cfg, pc, seed, idx, terrain, None)
            assert (fk, list(frej.items())) == (k, list(rej.items())), idx
            assert ft.snr_db.tobytes() == t.snr_db.tobytes() and ft.tx_power_dbm == t.tx_power_dbm
        for key, v in rej.items():
            total[key] = total.get(key, 0) + v
    return total


def cfg_of(d: dict) -> GenerationConfig:
    return GenerationConfig.from_normalized(d)


def with_prop(base: dict, **prop) -> dict:
    return config_with(base, propagation={**base["propagation"], **prop})


def test_default_config(default_config_dict):
    cfg = cfg_of(default_config_dict)
    assert cfg.propagation.model == "itm" and cfg.inside_ratio < 1.0 < cfg.outside_margin_km
    total = assert_same_verdicts(cfg, 20240601, range(2000))
    assert total["snr"] > 10_000 and total["gdop"] > 0


def test_negative_seed_and_large_indices(default_config_dict):
    assert_same_verdicts(cfg_of(default_config_dict), -123456789012345, [0, 2**32 - 1, 2**32, 2**40 + 7, 2**62])


def test_free_space_model(default_config_dict):
    cfg = cfg_of(with_prop(default_config_dict, model="free_space"))
    assert_same_verdicts(cfg, 5, range(500))


def test_other_climate_siting_polarization_and_antennas(default_config_dict):
    d = with_prop(default_config_dict, climate="maritime_temperate_land", tx_siting="careful",
                  rx_siting="very_careful", polarization="horizontal", terrain_irregularity_m=30,
                  surface_refractivity_n=330)
    st = [dict(s) for s in d["receivers"]["stations"]]
    st[0]["antenna"] = {"pattern": "directional", "gain_dbi": 8, "azimuth_deg": 90, "beamwidth_deg": 65,
                        "front_to_back_db": 20}
    st[1]["antenna"] = {"pattern": "omni", "gain_dbi": 3}
    st[2]["noise_environment"] = "city"
    d = config_with(d, receivers={**d["receivers"], "stations": st}, inside_ratio=0.2, outside_margin_km=50,
                    tx_power_dbm=30, min_receivers=4)
    assert_same_verdicts(cfg_of(d), 77, range(250))


def test_everything_inside_and_no_margin(default_config_dict):
    assert_same_verdicts(cfg_of(config_with(default_config_dict, inside_ratio=1.0)), 3, range(200))
    assert_same_verdicts(cfg_of(config_with(default_config_dict, inside_ratio=0.0, outside_margin_km=0)), 3,
                         range(200))


def test_a_config_that_rejects_for_gdop(default_config_dict):
    cfg = cfg_of(config_with(default_config_dict, max_gdop=2.0, tx_power_dbm=50))
    total = assert_same_verdicts(cfg, 11, range(300))
    assert total["gdop"] > 300


@pytest.mark.parametrize("max_attempts", [37, 48])
def test_exhausted_attempts_raise_with_the_same_rejections(default_config_dict, max_attempts):
    """Both reasons, in the order the Python loop meets them; block edges at 16."""
    cfg = cfg_of(config_with(default_config_dict, max_gdop=1.2, tx_power_dbm=45, max_attempts=max_attempts))
    total = assert_same_verdicts(cfg, 2, range(40))
    assert total["gdop"] > 0 and total["snr"] > 0
    with pytest.raises(GenerationError) as err:
        generate_samples(cfg_of(config_with(default_config_dict, max_gdop=1e-4, max_attempts=max_attempts)),
                         2, 0, 1, want_iq=False)
    assert err.value.attempts == max_attempts and sum(err.value.rejections.values()) == max_attempts


def test_first_reason_gdop_comes_first(default_config_dict):
    """A sample whose first rejection is for GDOP lists "gdop" first, as the loop's dict."""
    cfg = cfg_of(config_with(default_config_dict, max_gdop=1.5, tx_power_dbm=60, max_attempts=200))
    pc = G._prepare(cfg)
    firsts = set()
    for idx in range(30):
        k, rej, _ = slow_attempts(cfg, 4, idx)
        _, _, frej = G._accepted_attempt(cfg, pc, 4, idx, None, None)
        assert list(frej.items()) == list(rej.items())
        if rej:
            firsts.add(next(iter(rej)))
    assert firsts == {"snr", "gdop"}


def test_cancel_is_checked_between_blocks(default_config_dict):
    cfg = cfg_of(config_with(default_config_dict, max_gdop=1e-4, max_attempts=1000))
    calls = []

    def cancel():
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(GenerationCancelled) as err:
        generate_samples(cfg, 1, 5, 2, cancel=cancel)
    assert (err.value.sample_idx, err.value.attempt) == (5, 3 * G.ATTEMPT_BLOCK)


def test_tx_power_fluctuation(default_config_dict):
    d = config_with(default_config_dict, tx_power_fluctuation_db=3.0, tx_power_dbm=40)
    cfg = cfg_of(d)
    assert_same_verdicts(cfg, 8, range(300))
    b = generate_samples(cfg_of(config_with(d, duration_ms=20)), 8, 0, 20, want_iq=False)
    assert np.all(np.abs(b.tx_power_dbm - 40.0) <= 3.0) and np.ptp(b.tx_power_dbm) > 2.0
    assert len(set(b.tx_power_dbm.tolist())) == 20
    for j in range(3):      # the stored power is the accepted attempt's
        t = G.draw_truth(cfg, numpy_stream(8, j, int(b.attempts[j]) - 1))
        assert b.tx_power_dbm[j] == t.tx_power_dbm
    # one more draw, after the exponentials: the rest of the attempt's draws are unchanged
    d_without = config_with(d)
    del d_without["tx_power_fluctuation_db"]        # a config stored before revision 0004
    without = cfg_of(d_without)
    assert without.tx_power_fluctuation_db is None
    assert_same_verdicts(without, 8, range(300))
    t0 = G.draw_truth(without, numpy_stream(8, 0, 0))
    t1 = G.draw_truth(cfg, numpy_stream(8, 0, 0))
    assert t0.tx_power_dbm == 40.0 and t1.tx_power_dbm != 40.0
    assert (t0.tx_lat, t0.tx_lon, t0.path_loss_db.tobytes()) == (t1.tx_lat, t1.tx_lon, t1.path_loss_db.tobytes())
    np.testing.assert_allclose(t1.rx_power_dbm - t0.rx_power_dbm, t1.tx_power_dbm - 40.0, atol=1e-9)
    b0 = generate_samples(without, 8, 0, 5, want_iq=False)
    np.testing.assert_array_equal(b0.tx_power_dbm, 40.0)


def test_legacy_and_random_layouts_keep_the_python_loop(default_config_dict, legacy_config_dict):
    assert not A.applies(cfg_of(legacy_config_dict))
    d = config_with(default_config_dict, receivers={
        "mode": "random", "count_min": 4, "count_max": 6, "alt_m": 200, "height_agl_m": 12,
        "area": {"lat_min": 45.3, "lat_max": 45.7, "lon_min": 7.4, "lon_max": 8.5},
        "antenna": {"pattern": "omni", "gain_dbi": 0}})
    assert not A.applies(cfg_of(d))
    assert G._accepted_attempt(cfg_of(legacy_config_dict), G._prepare(cfg_of(legacy_config_dict)), 1, 0, None,
                               None)[1].tx_power_dbm == legacy_config_dict["tx_power_dbm"]


# --------------------------------------------------------------------------- terrain

STATIONS = [(45.40, 7.60), (45.60, 7.80), (45.45, 8.20), (45.55, 8.40), (45.30, 8.00)]


def terrain_config(base: dict, dem: T.Dem, **overrides) -> dict:
    """Fixed stations at DEM + 10 m on ``dem`` (as tests/unit/test_terrain.py builds them)."""
    ground = T.elevation_m(dem, [s[0] for s in STATIONS], [s[1] for s in STATIONS])
    template = base["receivers"]["stations"][0]
    st = [{**template, "id": f"s{i}", "name": f"s{i}", "lat": la, "lon": lo, "alt_m": float(g) + 10.0,
           "height_agl_m": 10, "antenna": {"pattern": "omni", "gain_dbi": 0}}
          for i, ((la, lo), g) in enumerate(zip(STATIONS, ground, strict=True))]
    prop = {**base["propagation"], "terrain": dem.name, "terrain_sha256": dem.sha256}
    return config_with(base, propagation=prop, receivers={"mode": "fixed", "stations": st}, **overrides)


@pytest.fixture(scope="module")
def hilly():
    return tt.make_dem(tt.hills(base_m=400.0, amplitude_m=300.0, seed=2), [(45, 7), (45, 8)], name="hilly",
                       sha256="a" * 64)


@pytest.mark.parametrize(("model", "tx_power_dbm"), [("itm", 20), ("free_space", 0)])
def test_terrain_set(default_config_dict, hilly, model, tx_power_dbm):
    d = terrain_config(default_config_dict, hilly, tx_power_dbm=tx_power_dbm, min_receivers=4)
    cfg = cfg_of(with_prop(d, model=model))
    total = assert_same_verdicts(cfg, 9, range(120), terrain=hilly)
    assert total.get("snr", 0) > 40 and total.get("gdop", 0) > 0
    b = generate_samples(cfg, 9, 0, 4, want_iq=False, terrain=hilly)
    for j in range(4):
        k, rej, t = slow_attempts(cfg, 9, j, hilly)
        assert (b.attempts[j], b.rejections[j]) == (k + 1, rej)
        assert b.true_snr_db[j, :5].tobytes() == t.snr_db.tobytes()


def test_samples_equal_the_python_loop(default_config_dict, monkeypatch):
    """generate_samples' bytes with the kernel and with the Python loop (the kernel off)."""
    cfg = cfg_of(config_with(default_config_dict, duration_ms=20))
    fast = generate_samples(cfg, 31, 0, 12)
    monkeypatch.setattr(A, "applies", lambda cfg: False)
    slow = generate_samples(cfg, 31, 0, 12)
    assert fast.iq.tobytes() == slow.iq.tobytes()
    for name in ("attempts", "tx_lat", "tx_power_dbm", "rssi_dbm", "true_snr_db", "gdop"):
        assert getattr(fast, name).tobytes() == getattr(slow, name).tobytes(), name
    assert fast.rejections == slow.rejections
