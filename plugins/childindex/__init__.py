"""childindex: a minimal, privacy-respecting index of children."""
