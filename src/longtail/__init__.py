"""longtail: recommend long-tail and cold-start items with pretrained language models."""

from longtail.errors import DataError, LongtailError

__version__ = "0.1.0"
__all__ = ["DataError", "LongtailError", "__version__"]
