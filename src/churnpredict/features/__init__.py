"""Point-in-time feature builders: declarations in, a (client_id, as_of) table out."""

from churnpredict.features.catalog import Feature

__all__ = ["Feature"]
