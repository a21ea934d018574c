"""One agency's rows for a chunk of children: true identity + that agency's noise, as strings.

Columns are built as pyarrow string arrays (null = blank field) from integer codes and
counter-based draws; nothing here loops over rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from childindex.contracts.contract import AGENCIES, Contract, load_contract
from childindex.simulation.synthetic import names as T
from childindex.simulation.synthetic.noise import swap_day_month, typo_strings
from childindex.simulation.synthetic.population import (
    Population,
    age_years,
    identity,
    local_numbers,
    surname_codes,
    typo_flags,
)
from childindex.simulation.synthetic.rand import integers, pair_keys, uniform
from childindex.validation.identifiers import UPN_CHECK_LETTERS

# Non-whitelisted columns each agency also sends (the pipeline must drop them):
# (contract field they follow, or None for the end of the row, column name).
EXTRAS: dict[str, tuple[tuple[str | None, str], ...]] = {
    "health": (("sex", "AddressLine1"), ("postcode", "Ethnicity"), (None, "GPPracticeCode")),
    "education": (("sex", "AddressLine1"), ("service", "SENStatus"), ("service", "FSMEligible")),
    "social_care": (("sex", "ADDRESS"), ("service", "REFERRAL_REASON"), ("service", "ALLOCATED_WORKER")),
}
SERVICE_WEIGHTS = {
    "education": {"school": 0.97, "alternative_provision": 0.02, "elective_home_education": 0.01},
    "social_care": {"early_help": 0.40, "child_in_need": 0.35, "child_protection": 0.12, "looked_after": 0.13},
}
COMMUNITY_PAEDIATRICS_RATE = 0.05
SENSITIVE_RATE = 0.01  # involvements an agency flags sensitive (where its contract has the flag)
LOCAL_MOVE_DISTRICT = 0.5  # of moves that stay in the postcode district
LOCAL_MOVE_AREA = 0.8  # ... or at least in the postcode area
FLAT_RATE = 0.05  # address lines "Flat 3, 12 Kings Road": a comma, so the CSV quotes them
LOCAL_ID_FORMAT = {"health": ("H", 8), "education": ("P", 8), "social_care": ("", 0)}
_UPN_LETTERS = pa.array(list(UPN_CHECK_LETTERS), pa.string())


@cache
def column_layout(agency: str) -> tuple[str, ...]:
    """Header of the agency's file: contract columns in order, extras interleaved."""
    contract = load_contract(agency)
    out: list[str] = []
    for col in contract.columns:
        out.append(col.name)
        out.extend(name for after, name in EXTRAS[agency] if after == col.field)
    out.extend(name for after, name in EXTRAS[agency] if after is None)
    return tuple(out)


@dataclass
class Chunk:
    columns: dict[str, pa.Array]  # header name -> string array, in layout order
    local_id: pa.Array
    person_id: np.ndarray
    twin: np.ndarray
    household: np.ndarray  # person id of the household's first child (twins, siblings)


def _ints(values: np.ndarray, mask: np.ndarray | None = None, width: int = 0) -> pa.Array:
    arr = pa.array(np.asarray(values, dtype=np.int64), mask=mask).cast(pa.string())
    return pc.utf8_lpad(arr, width=width, padding="0") if width else arr


def _join(*parts, sep: str = "") -> pa.Array:
    return pc.binary_join_element_wise(*parts, sep)


def _dates(days: np.ndarray, fmt: str, mask: np.ndarray | None = None) -> pa.Array:
    """Dates formatted with ``fmt``: each distinct day once (a few thousand), then a take."""
    distinct, index = np.unique(np.asarray(days, dtype=np.int32), return_inverse=True)
    table = pc.strftime(pa.array(distinct, pa.int32()).cast(pa.date32()), format=fmt)
    return table.take(pa.array(index.ravel(), mask=mask))


def _choose(u: np.ndarray, weights: dict[str, float], services: tuple[str, ...]) -> np.ndarray:
    cum = np.cumsum(list(weights.values()))
    pick = np.minimum(np.searchsorted(cum / cum[-1], u, side="right"), len(cum) - 1)
    lookup = np.array([services.index(s) for s in weights], dtype=np.int64)
    return lookup[pick]


def local_id_strings(agency: str, numbers: np.ndarray) -> pa.Array:
    prefix, width = LOCAL_ID_FORMAT[agency]
    digits = _ints(numbers, width=width)
    return _join(prefix, digits) if prefix else digits


def address(seed: int, household: np.ndarray, version: np.ndarray) -> dict[str, pa.Array]:
    """Address line, postcode and town of each (household, address version)."""
    version = np.asarray(version, dtype=np.int64)
    key = pair_keys(household, version + 1)
    # Most moves are local: after a move, half of households stay in their postcode
    # district and another 30% in their postcode area (the first address's).
    first = pair_keys(household, np.ones_like(version))
    local = np.where(version != 0, uniform(seed, "move/local", key), 1.0)  # -1: the address before
    area = integers(seed, "pc/area", np.where(local < LOCAL_MOVE_AREA, first, key), len(T.POSTCODE_AREAS))
    district = integers(seed, "pc/district", np.where(local < LOCAL_MOVE_DISTRICT, first, key), 30)
    postcode = _join(
        T.AREA_TABLE.take(area),
        _ints(1 + district),
        " ",
        _ints(integers(seed, "pc/digit", key, 10)),
        T.INWARD_LETTERS.take(integers(seed, "pc/l1", key, 20)),
        T.INWARD_LETTERS.take(integers(seed, "pc/l2", key, 20)),
    )
    street = _join(
        _ints(1 + integers(seed, "addr/house", key, 180)),
        T.STREET_STEMS.take(integers(seed, "addr/stem", key, len(T.STREET_STEMS))),
        T.STREET_SUFFIXES.take(integers(seed, "addr/suffix", key, len(T.STREET_SUFFIXES))),
        sep=" ",
    )
    flat = uniform(seed, "addr/flat", key) < FLAT_RATE
    flat_line = _join("Flat ", _ints(1 + integers(seed, "addr/flatno", key, 12)), ", ", street)
    return {
        "line": pc.if_else(pa.array(flat), flat_line, street),
        "postcode": postcode,
        "town": T.TOWN_TABLE.take(area),
    }


def build_chunk(pop: Population, agency: str, p: np.ndarray) -> Chunk:
    """Rows of ``agency`` for children ``p`` (all enrolled in it), ready to serialise."""
    contract: Contract = load_contract(agency)
    seed, noise = pop.seed, pop.noise
    who = identity(pop, p)
    hh = who.household
    f: dict[str, pa.Array] = {}  # contract field -> values
    f["local_id"] = local_id_strings(agency, local_numbers(pop, agency, p))

    # Identifiers, with agency-specific gaps.
    no_nhs = (who.nhs == 0) | (uniform(seed, f"no_nhs/{agency}", p) < noise.missing_nhs(agency))
    f["nhs_number"] = _ints(who.nhs, mask=no_nhs)
    no_upn = (who.upn_body < 0) | (uniform(seed, f"no_upn/{agency}", p) < noise.missing_upn(agency))
    f["upn"] = _join(_UPN_LETTERS.take(who.upn_check), _ints(who.upn_body, mask=no_upn))

    # Given name: nickname swap (on codes), then typo.
    partner = np.where(who.name_list == 0, T.NICKNAME_BY_SEX[0][who.given], T.NICKNAME_BY_SEX[1][who.given])
    nick_rate = noise.nickname / max(T.NICKNAME_ELIGIBLE_SHARE, 1e-9)
    nick = (partner >= 0) & (uniform(seed, f"nickname/{agency}", p) < nick_rate)
    given = T.GIVEN_TABLE.take(np.where(nick, partner, who.given))

    # Family name: hyphenated or changed after a family change (same for a household).
    changed = uniform(seed, f"surname_change/{agency}", hh) < noise.surname_change
    hyphen = changed & (uniform(seed, f"surname_kind/{agency}", hh) < 0.5)
    other = surname_codes(seed, f"surname_other/{agency}", hh)
    other = np.where(other == who.surname, (other + 1) % len(T.SURNAMES), other)
    own_s, other_s = T.SURNAME_TABLE.take(who.surname), T.SURNAME_TABLE.take(other)
    family = pc.if_else(pa.array(hyphen), _join(own_s, other_s, sep="-"), pc.if_else(pa.array(changed), other_s, own_s))

    typo = typo_flags(pop, agency, p) & ~pop.fixed[agency][p]
    in_given = uniform(seed, f"typo_field/{agency}", p) < 0.5
    f["given_name"] = _typo(given, typo & in_given, seed, agency, p)
    f["family_name"] = _typo(family, typo & ~in_given, seed, agency, p)

    swap = uniform(seed, f"dob_swap/{agency}", p) < noise.dob_swap
    dob, _ = swap_day_month(who.dob, swap, latest=pop.first_day + pop.night - 1)
    f["date_of_birth"] = _dates(dob, contract.date_format)
    f["sex"] = _sex_codes(contract, seed, agency, p, who.sex)

    # Address: the current one, or the previous one in the one agency that missed a move.
    version = pop.addr_ver[p].astype(np.int64)
    enrolled = np.stack([pop.enrol[a][p] >= 0 for a in AGENCIES])
    n_in = enrolled.sum(axis=0)
    rank = enrolled[: AGENCIES.index(agency)].sum(axis=0)
    stale = (uniform(seed, "stale_address", hh) < noise.house_move) & (n_in >= 2)
    stale &= (integers(seed, "stale_pick", hh, np.maximum(n_in, 1)) == rank) & (version == 0)
    addr = address(seed, hh, np.where(stale, -1, version))
    f["postcode"] = addr["postcode"]

    service = _services(pop, contract, agency, p, who.dob)
    f["service"] = pa.array(contract.services, pa.string()).take(service)
    f["contact_route"] = _contacts(contract, seed, agency, p, service)
    if contract.sensitive_codes:
        # A few involvements are flagged sensitive (a refuge, a sexual health service).
        yes = next(c for c, v in contract.sensitive_codes.items() if v)
        no = next(c for c, v in contract.sensitive_codes.items() if not v)
        flagged = uniform(seed, f"sensitive/{agency}", p) < SENSITIVE_RATE
        f["sensitive"] = pa.array(np.where(flagged, yes, no), pa.string())
    start, end, ended = _involvement(pop, agency, p, who.dob)
    f["involvement_start"] = _dates(start, contract.date_format)
    f["involvement_end"] = _dates(end, contract.date_format, mask=~ended)

    extras = _extras(agency, seed, p, hh, addr)
    columns: dict[str, pa.Array] = {}
    by_name = {c.name: c.field for c in contract.columns}
    for name in column_layout(agency):
        columns[name] = f[by_name[name]] if name in by_name else extras[name]
    return Chunk(columns=columns, local_id=f["local_id"], person_id=p, twin=who.twin, household=who.household)


def _typo(values: pa.Array, mask: np.ndarray, seed: int, agency: str, p: np.ndarray) -> pa.Array:
    rows = np.flatnonzero(mask)
    if len(rows) == 0:
        return values
    key = p[rows]
    subset = values.take(pa.array(rows)).to_numpy(zero_copy_only=False).astype(str)
    edited = typo_strings(
        subset,
        uniform(seed, f"typo_kind/{agency}", key),
        uniform(seed, f"typo_pos/{agency}", key),
        uniform(seed, f"typo_char/{agency}", key),
    )
    index = np.arange(len(values), dtype=np.int64)
    index[rows] = len(values) + np.arange(len(rows))  # point edited rows at the edits
    return pa.concat_arrays([values, pa.array(edited, pa.string())]).take(pa.array(index))


def _sex_codes(contract: Contract, seed: int, agency: str, p: np.ndarray, sex: np.ndarray) -> pa.Array:
    codes = list(contract.sex_codes)
    by_sex = [[i for i, c in enumerate(codes) if contract.sex_codes[c] == s] for s in "MFU"]
    if not by_sex[2]:  # no code for "not known": the system records M or F
        by_sex[2] = by_sex[0] + by_sex[1]
    width = max(len(b) for b in by_sex)
    table = np.array([[b[i % len(b)] for i in range(width)] for b in by_sex], dtype=np.int64)
    choice = integers(seed, f"sex_code/{agency}", p, np.array([len(b) for b in by_sex])[sex])
    return pa.array(codes, pa.string()).take(table[sex, choice])


def _services(pop: Population, contract: Contract, agency: str, p: np.ndarray, dob: np.ndarray) -> np.ndarray:
    services, u = contract.services, uniform(pop.seed, f"service/{agency}", p)
    if agency != "health":
        return _choose(u, SERVICE_WEIGHTS[agency], services)
    young = age_years(dob, pop.first_night) < 5
    out = np.where(young, services.index("health_visiting"), services.index("school_nursing"))
    paeds = (u < COMMUNITY_PAEDIATRICS_RATE) & (pop.enrol[agency][p] == 0)  # births go to HV
    return np.where(paeds, services.index("community_paediatrics"), out)


@cache
def _team_table(agency: str) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    services = load_contract(agency).services
    teams = T.team_contacts(agency, services)
    sizes = np.array([len(teams[s]) for s in services], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return pa.concat_arrays([teams[s] for s in services]), offsets, sizes


def _contacts(contract: Contract, seed: int, agency: str, p: np.ndarray, service: np.ndarray) -> pa.Array:
    table, offsets, sizes = _team_table(agency)
    return table.take(offsets[service] + integers(seed, f"team/{agency}", p, sizes[service]))


def _involvement(pop: Population, agency: str, p: np.ndarray, dob: np.ndarray):
    """(start days, end days, ended mask) of each child's involvement with the agency."""
    seed, first = pop.seed, pop.first_day
    dob = dob.astype(np.int64)
    if agency == "education":
        earliest = np.minimum(dob + 1461, first - 1)
    elif agency == "social_care":
        earliest = np.maximum(dob, first - 1095)
    else:
        earliest = dob
    earliest = np.minimum(earliest, first - 1)
    span = np.maximum(first - earliest, 1)
    base_start = earliest + integers(seed, f"start/{agency}", p, span)
    enrol = pop.enrol[agency][p].astype(np.int64)
    start = np.where(enrol > 0, first + enrol, base_start)
    end_night = pop.end[agency][p].astype(np.int64)
    closed_span = np.maximum(first - start, 1)
    earlier_end = start + integers(seed, f"end/{agency}", p, closed_span)
    end = np.where(end_night > 0, first + end_night, earlier_end)
    return start, end, end_night >= 0


def _extras(agency: str, seed: int, p: np.ndarray, hh: np.ndarray, addr: dict[str, pa.Array]) -> dict[str, pa.Array]:
    if agency == "health":
        eth = np.searchsorted(T.ETHNICITY_CUMWEIGHTS, uniform(seed, "ethnicity", hh), "right")
        gp = _join(
            T.GP_PREFIXES.take(integers(seed, "gp/prefix", hh, len(T.GP_PREFIXES))),
            _ints(integers(seed, "gp/number", hh, 100_000), width=5),
        )
        return {
            "AddressLine1": addr["line"],
            "Ethnicity": T.ETHNICITY_CODES.take(np.minimum(eth, len(T.ETHNICITY_CODES) - 1)),
            "GPPracticeCode": gp,
        }
    if agency == "education":
        u = uniform(seed, "sen", p)
        fsm = uniform(seed, "fsm", hh) < 0.24
        return {
            "AddressLine1": addr["line"],
            "SENStatus": T.SEN_CODES.take(np.where(u < 0.85, 0, np.where(u < 0.97, 1, 2))),
            "FSMEligible": pa.array(np.where(fsm, "Y", "N"), pa.string()),
        }
    worker_list = integers(seed, "worker/list", p, 2)
    first = np.where(
        worker_list == 0,
        T.GIVEN_BY_SEX[0][integers(seed, "worker/given", p, len(T.GIVEN_BY_SEX[0]))],
        T.GIVEN_BY_SEX[1][integers(seed, "worker/given", p, len(T.GIVEN_BY_SEX[1]))],
    )
    return {
        "ADDRESS": _join(addr["line"], addr["town"], sep=", "),
        "REFERRAL_REASON": T.REFERRAL_REASONS.take(integers(seed, "referral", p, len(T.REFERRAL_REASONS))),
        "ALLOCATED_WORKER": _join(
            T.GIVEN_TABLE.take(first), T.SURNAME_TABLE.take(surname_codes(seed, "worker/sn", p)), sep=" "
        ),
    }


def true_identity_frame(pop: Population, p: np.ndarray):
    """Noise-free identity of children ``p`` as a pandas DataFrame (for tests and evaluation).

    Columns: person_id, household, twin, given_name, nickname (the partner name or None),
    family_name, date_of_birth (datetime64[s]), sex (M/F/U), postcode and address (current),
    nhs_number, upn (None when the child has none).
    """
    import pandas as pd

    p = np.asarray(p, dtype=np.int64)
    who = identity(pop, p)
    partner = np.where(who.name_list == 0, T.NICKNAME_BY_SEX[0][who.given], T.NICKNAME_BY_SEX[1][who.given])
    addr = address(pop.seed, who.household, pop.addr_ver[p])
    return pd.DataFrame(
        {
            "person_id": p,
            "household": who.household,
            "twin": who.twin,
            "given_name": T.GIVEN_TABLE.take(who.given).to_pandas(),
            "nickname": T.GIVEN_TABLE.take(pa.array(partner, mask=partner < 0)).to_pandas(),
            "family_name": T.SURNAME_TABLE.take(who.surname).to_pandas(),
            "date_of_birth": who.dob.astype("datetime64[D]").astype("datetime64[s]"),
            "sex": np.array(["M", "F", "U"])[who.sex],
            "postcode": addr["postcode"].to_pandas(),
            "address": addr["line"].to_pandas(),
            "nhs_number": _ints(who.nhs, mask=who.nhs == 0).to_pandas(),
            "upn": _join(_UPN_LETTERS.take(who.upn_check), _ints(who.upn_body, mask=who.upn_body < 0)).to_pandas(),
        }
    )
