"""RF simulation core: (normalized config, seed, sample_idx) -> sample (truth, features, IQ).

Pure functions, no database or object-store I/O (the optional ``audio_library`` WAV folder
is the only file input). See :func:`generate_samples`.
"""

from .generate import GENERATOR_VERSION, GenerationError, SampleBatch, generate_samples

__all__ = ["GENERATOR_VERSION", "GenerationError", "SampleBatch", "generate_samples"]
