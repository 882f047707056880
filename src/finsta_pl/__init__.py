"""finsta-pl: Finsta structural spatio-temporal alignment for video-language models, on Lightning."""
from finsta_pl.compat.torchvision import make_importable as _make_torchvision_importable

__version__ = "0.1.0"

# torchmetrics imports torchvision whenever it is installed; a torchvision built for another torch release
# would make that import fail (see compat/torchvision.py), so its missing operators are defined first.
_make_torchvision_importable()
