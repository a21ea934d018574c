"""Fixed lookup tables for the synthetic population: names, nicknames, places and teams.

Every table is built once from Faker's en_GB provider lists plus small hand-written lists,
deduplicated, and kept as a pyarrow string array so that the generator works on integer
codes and only turns them into strings chunk by chunk (``TABLE.take(codes)``).

Every string here is representable in cp1252 *and* latin-1 (checked at import), because
the education extract is cp1252 and the social care extract is latin-1.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from faker.providers.address.en_GB import Provider as _Address
from faker.providers.person.en_GB import Provider as _Person

# Accented names so that the file encodings matter (all in cp1252 and latin-1).
ACCENTED_FEMALE = ("Zoë", "Chloé", "Siân", "Renée", "Anaïs", "Léa", "Eloïse")
ACCENTED_MALE = ("Noël", "Seán", "José", "André", "Jérôme", "Rónán")
EXTRA_FEMALE = ("Madison",)

# (formal, short) pairs; nickname noise swaps a name for its partner in either direction.
NICKNAMES_MALE = (
    ("William", "Bill"),
    ("Robert", "Bob"),
    ("Alexander", "Alex"),
    ("Thomas", "Tom"),
    ("John", "Jack"),
    ("Henry", "Harry"),
    ("Samuel", "Sam"),
    ("James", "Jim"),
    ("Joseph", "Joe"),
    ("Michael", "Mike"),
    ("Daniel", "Danny"),
    ("Matthew", "Matt"),
    ("Christopher", "Chris"),
    ("Benjamin", "Ben"),
    ("Nicholas", "Nick"),
    ("Edward", "Ed"),
    ("Jonathan", "Jon"),
    ("Anthony", "Tony"),
    ("Richard", "Rich"),
    ("Stephen", "Steve"),
    ("Andrew", "Andy"),
    ("David", "Dave"),
    ("Peter", "Pete"),
    ("Timothy", "Tim"),
    ("Joshua", "Josh"),
    ("Oliver", "Ollie"),
    ("Charles", "Charlie"),
    ("Frederick", "Fred"),
    ("Kenneth", "Ken"),
    ("Lawrence", "Larry"),
    ("Raymond", "Ray"),
    ("Gregory", "Greg"),
    ("Philip", "Phil"),
    ("Patrick", "Paddy"),
    ("Jacob", "Jake"),
    ("Donald", "Don"),
    ("Ronald", "Ron"),
    ("Gerald", "Gerry"),
    ("Leonard", "Len"),
    ("Terence", "Terry"),
    ("Douglas", "Doug"),
    ("Stanley", "Stan"),
    ("Francis", "Frank"),
    ("Steven", "Stevie"),
)
NICKNAMES_FEMALE = (
    ("Elizabeth", "Liz"),
    ("Katherine", "Kate"),
    ("Eleanor", "Ellie"),
    ("Madison", "Maddie"),
    ("Margaret", "Maggie"),
    ("Rebecca", "Becky"),
    ("Jennifer", "Jenny"),
    ("Victoria", "Vicky"),
    ("Samantha", "Sam"),
    ("Alexandra", "Alex"),
    ("Charlotte", "Lottie"),
    ("Abigail", "Abbie"),
    ("Jessica", "Jess"),
    ("Catherine", "Cathy"),
    ("Deborah", "Debbie"),
    ("Susan", "Sue"),
    ("Patricia", "Trish"),
    ("Christine", "Chris"),
    ("Amanda", "Mandy"),
    ("Gillian", "Gill"),
    ("Natalie", "Nat"),
    ("Kimberley", "Kim"),
    ("Stephanie", "Steph"),
    ("Josephine", "Jo"),
    ("Bethany", "Beth"),
    ("Francesca", "Fran"),
    ("Georgina", "Georgie"),
    ("Kathryn", "Katie"),
    ("Jacqueline", "Jackie"),
    ("Kathleen", "Kath"),
    ("Pamela", "Pam"),
    ("Rosemary", "Rosie"),
    ("Amelia", "Millie"),
    ("Olivia", "Liv"),
    ("Hannah", "Annie"),
    ("Danielle", "Dani"),
)


def _unique(items) -> list[str]:
    return list(dict.fromkeys(items))


MALE_NAMES = _unique(list(_Person.first_names_male) + list(ACCENTED_MALE))
FEMALE_NAMES = _unique(list(_Person.first_names_female) + list(ACCENTED_FEMALE) + list(EXTRA_FEMALE))
_nick_names = [n for pairs in (NICKNAMES_MALE, NICKNAMES_FEMALE) for pair in pairs for n in pair]
GIVEN_NAMES: list[str] = _unique(MALE_NAMES + FEMALE_NAMES + _nick_names)
_GIVEN_INDEX = {n: i for i, n in enumerate(GIVEN_NAMES)}
GIVEN_TABLE = pa.array(GIVEN_NAMES, pa.string())
# Sampling lists as codes into GIVEN_TABLE (index 0 = male, 1 = female).
GIVEN_BY_SEX = (
    np.array([_GIVEN_INDEX[n] for n in MALE_NAMES], dtype=np.int32),
    np.array([_GIVEN_INDEX[n] for n in FEMALE_NAMES], dtype=np.int32),
)


def _nickname_map(pairs) -> np.ndarray:
    """code -> partner code (or -1), for one sex's table of pairs."""
    out = np.full(len(GIVEN_NAMES), -1, dtype=np.int32)
    for formal, short in pairs:
        a, b = _GIVEN_INDEX[formal], _GIVEN_INDEX[short]
        if out[a] != -1 or out[b] != -1:
            raise AssertionError(f"name in two nickname pairs: {formal}/{short}")
        out[a], out[b] = b, a
    return out


NICKNAME_BY_SEX = (_nickname_map(NICKNAMES_MALE), _nickname_map(NICKNAMES_FEMALE))
# Share of sampled names (uniform within each sex list) that have a nickname partner.
NICKNAME_ELIGIBLE_SHARE = float(np.mean([np.mean(NICKNAME_BY_SEX[s][GIVEN_BY_SEX[s]] >= 0) for s in (0, 1)]))

_last = _Person.last_names
SURNAMES: list[str] = list(_last.keys()) if isinstance(_last, dict) else _unique(_last)
SURNAME_TABLE = pa.array(SURNAMES, pa.string())
_w = np.array(list(_last.values()) if isinstance(_last, dict) else [1.0] * len(SURNAMES))
SURNAME_CUMWEIGHTS = np.cumsum(_w / _w.sum())
SURNAME_CUMWEIGHTS[-1] = 1.0

STREET_STEMS = pa.array(_unique(SURNAMES + MALE_NAMES[:120] + FEMALE_NAMES[:120]), pa.string())
STREET_SUFFIXES = pa.array(_unique(_Address.street_suffixes), pa.string())

# Real postcode outward areas, with the town each address line ends with.
POSTCODE_AREAS = (
    ("LS", "Leeds"),
    ("M", "Manchester"),
    ("B", "Birmingham"),
    ("BS", "Bristol"),
    ("NE", "Newcastle upon Tyne"),
    ("S", "Sheffield"),
    ("L", "Liverpool"),
    ("NG", "Nottingham"),
    ("LE", "Leicester"),
    ("CV", "Coventry"),
    ("SO", "Southampton"),
    ("PL", "Plymouth"),
    ("EX", "Exeter"),
    ("YO", "York"),
    ("HU", "Hull"),
    ("BD", "Bradford"),
    ("HX", "Halifax"),
    ("WF", "Wakefield"),
    ("SK", "Stockport"),
    ("OL", "Oldham"),
)
AREA_TABLE = pa.array([a for a, _ in POSTCODE_AREAS], pa.string())
TOWN_TABLE = pa.array([t for _, t in POSTCODE_AREAS], pa.string())
INWARD_LETTERS = pa.array(list("ABDEFGHJLNPQRSTUWXYZ"), pa.string())

# Real DfE local authority numbers (201-938) used as the LA part of synthetic UPNs.
LA_CODES = np.array(
    [
        201,
        202,
        203,
        204,
        205,
        206,
        207,
        208,
        209,
        210,
        211,
        212,
        213,
        301,
        302,
        303,
        304,
        305,
        306,
        307,
        308,
        309,
        310,
        311,
        312,
        313,
        314,
        315,
        316,
        317,
        318,
        319,
        320,
        330,
        331,
        332,
        333,
        334,
        335,
        336,
        340,
        341,
        342,
        343,
        344,
        350,
        351,
        352,
        353,
        354,
        355,
        356,
        357,
        358,
        359,
        370,
        371,
        372,
        373,
        380,
        381,
        382,
        383,
        384,
        390,
        391,
        392,
        393,
        394,
        800,
        801,
        802,
        803,
        805,
        806,
        807,
        808,
        810,
        811,
        812,
        813,
        815,
        816,
        821,
        822,
        823,
        825,
        826,
        830,
        831,
        835,
        836,
        837,
        840,
        841,
        845,
        846,
        850,
        851,
        852,
        855,
        856,
        857,
        860,
        861,
        865,
        866,
        867,
        868,
        869,
        870,
        871,
        872,
        873,
        874,
        876,
        877,
        878,
        879,
        880,
        881,
        882,
        883,
        884,
        885,
        886,
        887,
        888,
        889,
        890,
        891,
        892,
        893,
        894,
        895,
        896,
        908,
        909,
        916,
        919,
        921,
        925,
        926,
        928,
        929,
        931,
        933,
        935,
        936,
        937,
        938,
    ],
    dtype=np.int64,
)

# Team places; those with an Ofcom drama range (0xxx 496 0000-0999, 020 7946 0000-0999)
# may publish a phone number, the rest a mailbox at the reserved example.org domain.
TEAM_PLACES = (
    ("leeds", "0113 496 0"),
    ("sheffield", "0114 496 0"),
    ("nottingham", "0115 496 0"),
    ("leicester", "0116 496 0"),
    ("bristol", "0117 496 0"),
    ("birmingham", "0121 496 0"),
    ("liverpool", "0151 496 0"),
    ("manchester", "0161 496 0"),
    ("london", "020 7946 0"),
    ("york", None),
    ("hull", None),
    ("bradford", None),
    ("wakefield", None),
)
SERVICE_SLUGS = {
    "health_visiting": "hv",
    "school_nursing": "sn",
    "community_paediatrics": "paeds",
    "school": "school",
    "alternative_provision": "ap",
    "elective_home_education": "ehe",
    "early_help": "earlyhelp",
    "child_in_need": "cin",
    "child_protection": "cp",
    "looked_after": "lac",
}
TEAMS_PER_ORGANISATION = 40


def team_contacts(organisation: str, services: tuple[str, ...]) -> dict[str, pa.Array]:
    """A fixed pool of 40 teams for one organisation: service -> array of contact routes."""
    out: dict[str, list[str]] = {s: [] for s in services}
    salt = sum(map(ord, organisation))
    for i in range(TEAMS_PER_ORGANISATION):  # 40 teams, not rows
        service = services[i % len(services)]
        place, phone = TEAM_PLACES[(i * 7 + salt) % len(TEAM_PLACES)]
        number = (i * 137 + salt * 11) % 1000
        if phone is not None and i % 2 == 0:
            out[service].append(f"{phone}{number:03d}")
        else:
            out[service].append(f"{place}-{SERVICE_SLUGS[service]}-team{i + 1}@example.org")
    return {s: pa.array(v, pa.string()) for s, v in out.items()}


# Extra (non-whitelisted) column values.
ETHNICITY_CODES = pa.array(list("ABCDEFGHJKLMNPRSZ"), pa.string())
ETHNICITY_CUMWEIGHTS = np.cumsum([70, 3, 6, 1, 1, 1, 1, 2, 6, 3, 2, 2, 1, 1, 1, 2, 17], dtype=np.float64)
ETHNICITY_CUMWEIGHTS /= ETHNICITY_CUMWEIGHTS[-1]
SEN_CODES = pa.array(["N", "K", "E"], pa.string())
REFERRAL_REASONS = pa.array(
    [
        "N1 Abuse or neglect",
        "N2 Child's disability",
        "N3 Parental illness or disability",
        "N4 Family in acute stress",
        "N5 Family dysfunction",
        "N6 Socially unacceptable behaviour",
        "N7 Low income",
        "N8 Absent parenting",
        "N9 Cases other than children in need",
    ],
    pa.string(),
)
GP_PREFIXES = pa.array(list("BCDEFGHJKLMNPY"), pa.string())


def _check_encodable() -> None:
    tables = [
        GIVEN_NAMES,
        SURNAMES,
        STREET_STEMS.to_pylist(),
        STREET_SUFFIXES.to_pylist(),
        TOWN_TABLE.to_pylist(),
        REFERRAL_REASONS.to_pylist(),
    ]
    for table in tables:
        for text in table:
            text.encode("cp1252")
            text.encode("latin-1")


_check_encodable()
