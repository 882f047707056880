"""finsta-pl: Finsta structural spatio-temporal alignment for video-language models, on Lightning."""
__version__ = "0.1.0"
