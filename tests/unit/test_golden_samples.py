"""Old datasets regenerate bit-identically: the RF core's bytes for configs without the
newer keys are pinned (see tests/unit/golden_samples.py). Computed with numpy 2.4,
numba 0.68 on x86-64; numpy's bit generators and our kernels are deterministic per
(seed, index, attempt), so a difference means old behaviour changed."""

from __future__ import annotations

import pytest

from tests.unit.golden_samples import CASES, batch_digests, case_config

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
