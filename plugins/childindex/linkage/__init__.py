"""Linkage: tonight's records against each other and the index, into children with stable ids."""

from childindex.linkage.night import LinkResult, link_pending
from childindex.linkage.training import train_model

__all__ = ["LinkResult", "link_pending", "train_model"]
