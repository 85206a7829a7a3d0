"""Stored IQ dtypes and their conversion to sqrt(mW) (numpy only; shared by the RF core,
the object-store layout and every reader).

``heimdall.synthetic_iq_samples.dtype`` names how a sample's IQ bytes are laid out; the
row's ``shape`` is (receivers, L) for both:

- ``complex64``: little-endian float32 I, Q per IQ sample (8 bytes), in sqrt(mW): mean
  |x|^2 is the power in mW. Every dataset whose config has no "adc_bits" (all created
  before revision 0004), and configs with ``"iq_dtype": "complex64"``.
- ``ci16_le`` (SigMF naming): little-endian int16 I, Q per IQ sample (4 bytes), the
  receiver's ADC codes after its AGC (:mod:`worker.rf.adc`), with ``scale_mw`` per
  receiver (mW per code^2): power in mW = mean(I^2 + Q^2) x scale_mw, and
  :func:`ci16_to_complex64` gives the sample in sqrt(mW). As a numpy array one sample is
  int16 (receivers, L, 2).
"""

from __future__ import annotations

import numpy as np

COMPLEX64 = "complex64"
CI16_LE = "ci16_le"
# stored dtype -> numpy element dtype and the trailing axes after (receivers, L)
NUMPY_DTYPES: dict[str, tuple[np.dtype, tuple[int, ...]]] = {
    COMPLEX64: (np.dtype("<c8"), ()),
    CI16_LE: (np.dtype("<i2"), (2,)),
}
# bytes per IQ sample (one receiver, one time step)
BYTES_PER_IQ_SAMPLE = {COMPLEX64: 8, CI16_LE: 4}


def stored_dtype(value: object) -> str:
    """The stored IQ dtype a pointer row's ``dtype`` column or a config's "iq_dtype" names:
    itself, "complex64" when absent (rows and configs from before revision 0004)."""
    return str(value or COMPLEX64)


def check_dtype(dtype: str) -> str:
    if dtype not in NUMPY_DTYPES:
        raise ValueError(f"stored IQ dtype must be one of {sorted(NUMPY_DTYPES)}, got {dtype!r}")
    return dtype


def dtype_of_array(iq: np.ndarray) -> str:
    """The stored dtype an IQ array (n, receivers, L) / (n, receivers, L, 2) is written as:
    complex64 arrays as complex64, int16 arrays with a last axis of 2 as ci16_le."""
    if iq.dtype == np.int16 and iq.ndim >= 1 and iq.shape[-1] == 2:
        return CI16_LE
    if np.issubdtype(iq.dtype, np.complexfloating):
        return COMPLEX64
    raise ValueError(f"IQ must be complex64 (..., R, L) or int16 (..., R, L, 2), got {iq.dtype} {iq.shape}")


def array_shape(n: int, receivers: int, length: int, dtype: str) -> tuple[int, ...]:
    """Shape of the .npy array of ``n`` samples of (receivers, L) in ``dtype``."""
    return (n, receivers, length, *NUMPY_DTYPES[check_dtype(dtype)][1])


def ci16_to_complex64(codes: np.ndarray, scale_mw: np.ndarray) -> np.ndarray:
    """int16 codes (..., R, L, 2) and scale_mw (..., R) -> complex64 (..., R, L) in sqrt(mW).

    Per component ``float32(code) * float32(sqrt(float64(scale_mw)))``: exactly the values
    :func:`worker.rf.adc.agc_adc` leaves in the float buffer the features are estimated
    from, so a ci16_le sample read back is bit-identical to the same config stored as
    complex64. A receiver of scale 0 (padding) gives zeros."""
    codes = np.asarray(codes)
    if codes.dtype != np.int16 or codes.ndim < 3 or codes.shape[-1] != 2:
        raise ValueError(f"codes must be int16 (..., R, L, 2), got {codes.dtype} {codes.shape}")
    scale = np.asarray(scale_mw, dtype=np.float32)
    if scale.shape != codes.shape[:-2]:
        raise ValueError(f"scale_mw of shape {scale.shape} does not fit codes of shape {codes.shape}")
    amp = np.sqrt(scale.astype(np.float64)).astype(np.float32)[..., None]
    out = np.empty(codes.shape[:-1], dtype=np.complex64)
    out.real = codes[..., 0].astype(np.float32) * amp
    out.imag = codes[..., 1].astype(np.float32) * amp
    return out
