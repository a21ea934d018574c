"""Keys: which key made the index's pseudonyms (epochs), and rotating to a new one."""

from childindex.keys.epochs import check_key, verify_key
from childindex.keys.rotation import Rotation, rotate_key

__all__ = ["Rotation", "check_key", "rotate_key", "verify_key"]
