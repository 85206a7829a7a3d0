"""Old datasets regenerate bit-identically: the RF core's bytes for configs without the
newer keys are pinned (see tests/unit/golden_samples.py). Computed with numpy 2.4,
numba 0.68 on x86-64; numpy's bit generators and our kernels are deterministic per
(seed, index, attempt), so a difference means old behaviour changed."""

from __future__ import annotations

import pytest

from tests.unit.golden_samples import (
    CASES,
    CASES_0003,
    CASES_0004,
    FIELDS_0003,
    FIELDS_0004,
    batch_digests,
    case_config,
    config_0003,
    config_0004,
)

GOLDEN = {
    "default": ("6f3c8bd7eefe87e28929af1eab59474b8b8df2faf0824eb625a6f05ae1ac105e",
                "b7424a91f0aa5259026c23f9ebbddb0de86b722fd87c8b6156704dca4a8f2027"),
    "default-far-index": ("8dc24e892560a305696433b8a129cda9244aff5a664c905daea058a7445d6f9d",
                          "98b9b94343e59ba8df162abfc3e59dbe9184f507df8956ce67b83e45b9b80c7c"),
    "random-receivers": ("cd91db8d69ceca35100e05dd4f756aec1ce952bae51ab30104af44cbfbf4380a",
                         "947a797b6ac0a3c9f44664434bd247bb87dd1d843df3d192724be2c20c696b44"),
    "no-multipath-tone": ("5e6872398b71edebcb14d9493718679a046d12fb94c279cba73d55080e1770b5",
                          "d133e3cc235dfcb114b09a491fcd16a9880c149b10b967073938e02f84cb05e9"),
}


@pytest.mark.parametrize("name, overrides, seed, first, count", CASES, ids=[c[0] for c in CASES])
def test_old_configs_keep_their_bytes(name, overrides, seed, first, count):
    features, iq = batch_digests(case_config(overrides), seed, first, count)
    assert (features, iq) == GOLDEN[name], f"{name}: generator output changed for an old config"


# Computed from the code of the 0003 release (commit e1ff516) before any 0004 change.
GOLDEN_0003 = {
    "0003-default": ("7c90fe60f31074cc36159ca5760186759ccd481ebc722f285116a593f687e58f",
                     "f917dd2978b60fb55abe9d7732f228db9044698add1b7951cadc1c68d99463ac"),
    "0003-default-far-index": ("d4bd980f5d1879ec8d5724cb568cb301d08e2eaf34a58b8f76004abbe91d081b",
                               "6dd9dbd57f4fd39e6d29adc5b2dfe973ec8c54e3bd07f9f87b95d072d6efeb29"),
    "0003-free-space-ntp": ("c033ca2dc930eb66ba53bb72a505daba69c46087be992dace6614496f8ae229a",
                            "16aae5d48289d2fd869093520a193808062bbbc6bea75ce9da484c4c0ba011b8"),
    "0003-random-coherent": ("d083cfbca3abd3982d2cdf3ab07632f6b9aa9044930e2de1e929e552283bc087",
                             "1f192610ceac65a5d5eb27bfeefd3bf951de0e0d411ebd0d15e018312fced29b"),
}


@pytest.mark.parametrize("name, overrides, seed, first, count", CASES_0003, ids=[c[0] for c in CASES_0003])
def test_0003_configs_keep_their_bytes(name, overrides, seed, first, count):
    """Datasets created with the 0003 release's configs (its default and variants) keep
    their bytes: the keys of revision 0004 (ADC, ci16 storage, messages) are absent there."""
    features, iq = batch_digests(config_0003(overrides), seed, first, count, FIELDS_0003)
    assert (features, iq) == GOLDEN_0003[name], f"{name}: generator output changed for a 0003 config"


# Computed from the code of the 0004 release (commit f29595e) before any later change.
GOLDEN_0004 = {
    "0004-default": ("3dc06d685d83e3a2787c077820169d873d782ba554e096e9f90a26c002e6fcf0",
                     "1e27c152342baada4c4e321924403f31cf2ae0b3dcb1bbbdd3db977e98eceb6a"),
    "0004-default-far-index": ("6526b091ad5a99eb35d9fb1b85dfbf8b5c3e6d3b34affa6b04b0b9cfb6690b2e",
                               "ebfb6908119015ff3d5da2a3ee3abdd024917c868cf0d519f3d9b11e434177b1"),
    "0004-cut-joint": ("d124090bb1358e4c91f13037e794d36939742e0a921ebef1a832ac0723969be3",
                       "18f971ca295d1c97366c18a406cd66313644895e24e2a6b27bf484689ae1ce14"),
    "0004-cut-coherent-tone": ("fa897096111f712c15951b390582a50d71328e39a9d2dd728b761fbdcaa85902",
                               "a6c84afe124b67a062716e1de99ea4cdf7c57eea6008ac3c2c270120cb0e1650"),
    "0004-complex64-free-space": ("581b61f8e2dc9ce045ac9f143f0f6c00f3827773b825bb69adcde8e698f2f942",
                                  "bb46c7717473385ddc9702e93f81e8ca4a4c1483f81143016ace2b96010f91d2"),
}


@pytest.mark.parametrize("name, overrides, seed, first, count", CASES_0004, ids=[c[0] for c in CASES_0004])
def test_0004_configs_keep_their_bytes(name, overrides, seed, first, count):
    """Datasets created with the 0004 release's configs (ci16 ADC codes, key-up/drop, CTCSS,
    both TDOA estimators, complex64 storage) keep their bytes, features and IQ."""
    features, iq = batch_digests(config_0004(overrides), seed, first, count, FIELDS_0004)
    assert (features, iq) == GOLDEN_0004[name], f"{name}: generator output changed for a 0004 config"
