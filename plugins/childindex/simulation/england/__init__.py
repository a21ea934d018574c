"""A synthetic England: its 153 upper-tier authority areas, postcode districts, NHS providers, the
organisations registry built on them, and where households live and move (see :mod:`.geography` and
:mod:`.world`). Sandbox only: never imported by a stage or a DAG."""

from childindex.simulation.england.geography import (
    REGIONS,
    LocalAuthority,
    NhsProvider,
    child_weights,
    england,
    neighbours,
    nhs_providers,
    select_areas,
)
from childindex.simulation.england.world import (
    CROSS,
    CROSS_PER_YEAR,
    MOVES_PER_YEAR,
    WITHIN,
    MoveSchedule,
    area_after_moves,
    england_registry,
    home_areas,
    move_destinations,
    move_schedule,
    postcode_in_area,
    write_registry,
)

__all__ = [
    "CROSS",
    "CROSS_PER_YEAR",
    "MOVES_PER_YEAR",
    "REGIONS",
    "WITHIN",
    "LocalAuthority",
    "MoveSchedule",
    "NhsProvider",
    "area_after_moves",
    "child_weights",
    "england",
    "england_registry",
    "home_areas",
    "move_destinations",
    "move_schedule",
    "neighbours",
    "nhs_providers",
    "postcode_in_area",
    "select_areas",
    "write_registry",
]
