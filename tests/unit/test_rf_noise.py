"""Noise per site (issue 12 item 3): ITU-R P.372 man-made noise + receiver noise figure,
the kernel against P.372's numbers, and the noise floor the features estimate per site."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import config_with

from worker.config import GenerationConfig
from worker.rf import generate as G
from worker.rf import generate_samples, noise

# P.372 Table 2 medians at 145 MHz, dB above kT0b: c - d log10(145).
P372_145MHZ = {"city": 16.93, "residential": 12.63, "rural": 7.33, "quiet_rural": -8.21}


@pytest.mark.parametrize("env, fam", sorted(P372_145MHZ.items()))
def test_man_made_noise_matches_p372_at_145_mhz(env, fam):
    assert noise.man_made_noise_db(145.0, env) == pytest.approx(fam, abs=0.01)


def test_man_made_noise_slope_and_range():
    # F_am falls by d dB per decade: 27.7 dB (city .. rural), 28.6 dB (quiet rural)
    for env, d in (("city", 27.7), ("residential", 27.7), ("rural", 27.7), ("quiet_rural", 28.6)):
        assert noise.man_made_noise_db(14.5, env) - noise.man_made_noise_db(145.0, env) == pytest.approx(d)
    assert noise.man_made_noise_db(145.0, "none") == -math.inf
    with pytest.raises(ValueError, match="0.3 .. 250 MHz"):
        noise.man_made_noise_db(433.0, "rural")
    assert noise.man_made_noise_db(433.0, "none") == -math.inf
    with pytest.raises(ValueError, match="noise_environment must be one of"):
        noise.man_made_noise_db(145.0, "suburban")


def test_system_noise_figure_combines_external_and_receiver_noise():
    envs = ["city", "residential", "rural", "quiet_rural", "none"]
    got = noise.system_noise_figure_db(145.0, envs, [6.0] * 5)
    for env, f_sys in zip(envs, got, strict=True):
        f_a = 1.0 if env == "none" else 10 ** (P372_145MHZ[env] / 10)
        # f = f_a + f_r - 1 (linear), to the 0.01 dB of the tabulated F_am
        assert f_sys == pytest.approx(10 * math.log10(f_a + 10 ** 0.6 - 1), abs=0.01), env
    # "none" is the receiver alone (generator 1.0.0's floor); a quiet receiver in a city is
    # city-limited, a noisy receiver in a quiet place receiver-limited
    assert got[4] == pytest.approx(6.0, abs=1e-12)
    city0, rural20 = noise.system_noise_figure_db(145.0, ["city", "quiet_rural"], [0.0, 20.0])
    assert city0 == pytest.approx(16.93, abs=0.01)
    # (a quiet-rural antenna is colder than T0: f_a = 0.15 takes 0.04 dB off a 20 dB receiver)
    assert rural20 == pytest.approx(10 * math.log10(10 ** (-0.821) + 100 - 1), abs=0.001)
    # the examples of the issue: residential 12.6, city 16.9, rural 7.3 dB above kT0B plus NF 6
    assert got[:3] == pytest.approx([17.19, 13.28, 9.24], abs=0.01)


@pytest.mark.parametrize("envs, nfs, match", [
    (["rural"], [6.0, 6.0], "noise figures"),
    (["urban"], [6.0], "noise_environment must be one of"),
    (["rural"], [41.0], "noise_figure_db must be in"),
    (["rural"], [-1.0], "noise_figure_db must be in"),
])
def test_system_noise_figure_rejects_bad_input(envs, nfs, match):
    with pytest.raises(ValueError, match=match):
        noise.system_noise_figure_db(145.0, envs, nfs)


def test_old_configs_keep_one_receiver_noise_figure(legacy_config_dict):
    pc = G._prepare(GenerationConfig.from_normalized(legacy_config_dict))
    assert isinstance(pc.noise_floor_dbm, float)
    assert pc.noise_floor_dbm == pytest.approx(-174 + 10 * math.log10(12500) + 6)


ENVS = ["city", "residential", "rural", "quiet_rural", "none", "rural"]
NFS = [6.0, 6.0, 6.0, 6.0, 6.0, 12.0]


def _site_config(default_config_dict):
    st = [dict(s) for s in default_config_dict["receivers"]["stations"][:6]]
    for s, env, nf in zip(st, ENVS, NFS, strict=True):
        s["noise_environment"], s["noise_figure_db"] = env, nf
    # strong transmitter, free space: every site detects it; the floor is what is checked
    return config_with(default_config_dict, receivers={"mode": "fixed", "stations": st}, tx_power_dbm=50.0,
                       propagation={**default_config_dict["propagation"], "model": "free_space"})


def test_each_site_gets_its_own_noise_floor(default_config_dict):
    cfg = GenerationConfig.from_normalized(_site_config(default_config_dict))
    pc = G._prepare(cfg)
    f_sys = noise.system_noise_figure_db(145.0, ENVS, NFS)
    np.testing.assert_allclose(pc.noise_floor_dbm, -174 + 10 * math.log10(12500) + f_sys)
    b = generate_samples(cfg, 12, 0, 40, want_iq=False)
    # truth: true_snr_db = true power - the site's floor
    np.testing.assert_allclose(b.true_rx_power_dbm - b.true_snr_db, np.broadcast_to(pc.noise_floor_dbm, (40, 6)))
    # estimate: the features' noise floor per site (from the IQ alone) is the P.372 floor
    # plus the 16-bit ADC's quantization noise (revision 0004: the AGC puts the loudest
    # block at agc_target_dbfs, so a link 90 dB above its floor is quantization-limited, as
    # a real receiver is): per component LSB^2 / 12 codes^2 of white noise, scale_mw mW per
    # code^2, in bandwidth_hz of the sampled band
    q_mw = 2.0 / 12.0 * b.iq_scale_mw * cfg.bandwidth_hz / cfg.sample_rate_hz
    expect = 10 * np.log10(10 ** (pc.noise_floor_dbm / 10) + q_mw)
    assert np.nanmax(expect - pc.noise_floor_dbm) > 3.0     # some links here are ADC-limited
    # its spread per sample is 0.11-0.14 dB, so within 0.45 dB (>= 3 sigma) per sample
    est = b.noise_floor_dbm
    assert np.all(np.abs(est - expect) < 0.45)
    # on the mean of 40 samples 0.1 dB, over the links the ADC leaves alone (< 0.05 dB)
    thermal = (expect - pc.noise_floor_dbm) < 0.05
    assert thermal.sum(axis=0).min() >= 20
    mean_est = np.array([est[thermal[:, r], r].mean() for r in range(6)])
    np.testing.assert_allclose(mean_est, pc.noise_floor_dbm, atol=0.1)
    # the sites differ as P.372 says: city - rural 7.95 dB, residential - rural 4.04 dB
    m = mean_est
    assert m[0] - m[2] == pytest.approx(f_sys[0] - f_sys[2], abs=0.15)
    assert m[1] - m[2] == pytest.approx(f_sys[1] - f_sys[2], abs=0.15)


def test_random_layout_uses_the_network_wide_keys(default_config_dict):
    d = config_with(default_config_dict, noise_environment="residential", noise_figure_db=3.0,
                    receivers={"mode": "random", "count_min": 4, "count_max": 5, "alt_m": 200, "height_agl_m": 10,
                               "antenna": {"pattern": "omni", "gain_dbi": 0},
                               "area": {"lat_min": 44.3, "lat_max": 45.6, "lon_min": 7.0, "lon_max": 9.3}})
    pc = G._prepare(GenerationConfig.from_normalized(d))
    want = -174 + 10 * math.log10(12500) + float(noise.system_noise_figure_db(145.0, ["residential"], [3.0])[0])
    assert isinstance(pc.noise_floor_dbm, float) and pc.noise_floor_dbm == pytest.approx(want)
