"""ltnas: neural architecture search for long-tailed image data."""

from ltnas.errors import LtnasError

__version__ = "0.1.0"
__all__ = ["LtnasError", "__version__"]
