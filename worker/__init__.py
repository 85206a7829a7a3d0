"""heimdall-synth: synthetic RF datasets for radio-source localization."""
__version__ = "0.1.0"
