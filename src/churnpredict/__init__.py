"""churnpredict: which clients are about to freeze their projects, why, and who should call."""

__version__ = "0.1.0"
