"""The dataset card's description of a config (heimdall_synth.card.config_in_words) says
what the generator does, for the revision 0004 default and for configs stored before it."""

from __future__ import annotations

import json

from heimdall_synth.card import config_in_words
from heimdall_synth.sigmf_export import DATATYPES
from tests.unit.golden_samples import CONFIG_0003
from worker.config import GenerationConfig, default_config_snapshot, stored_iq_dtype_of
from worker.iqformat import BYTES_PER_IQ_SAMPLE


def test_the_adc_line_describes_the_hold_the_loudest_block_agc():
    cfg = default_config_snapshot()
    text = "\n".join(config_in_words(cfg))
    assert f"loudest {cfg['agc_window_ms']} ms block to {cfg['agc_target_dbfs']} dBFS" in text
    assert "holds that gain" in text and f"{cfg['adc_bits']} bits" in text
    assert "`ci16_le`" in text


def test_configs_before_0004_have_no_adc_line_and_store_complex64():
    cfg = json.loads(CONFIG_0003.read_text())
    text = "\n".join(config_in_words(cfg))
    assert "Receiver ADC" not in text and "Stored IQ" not in text
    assert stored_iq_dtype_of(cfg) == "complex64" == GenerationConfig.from_normalized(cfg).stored_iq_dtype
    assert stored_iq_dtype_of(default_config_snapshot()) == "ci16_le"
    assert stored_iq_dtype_of({**default_config_snapshot(), "iq_dtype": "complex64"}) == "complex64"


def test_sigmf_datatypes_cover_every_stored_dtype_with_its_size():
    assert set(DATATYPES) == set(BYTES_PER_IQ_SAMPLE)
    assert {k: v[1] for k, v in DATATYPES.items()} == BYTES_PER_IQ_SAMPLE
