"""Deterministic synthetic children and the nightly extracts organisations send about them.

ALL DATA IS SYNTHETIC. Names come from Faker's en_GB lists, NHS numbers only from the
never-issued 999 test range, phone numbers only from Ofcom's drama ranges (0113 496 0xxx,
020 7946 0xxx, ...) and mailboxes only at example.org.

Output is a pure function of (registry, children, seed, first_night, night_number, noise):
every random choice is a counter-based hash of (seed, stream, key)
(:mod:`childindex.simulation.rand`), so the same arguments give byte-identical files, and a
chunk of rows can be built on its own.

Population (:mod:`.population`)
    ``children`` base children aged 0-17 at the first night, ~0.3% of sex not known; 1.5%
    are in twin pairs. Involvement per sector: health ~97% of children, education ~96% of
    school-age (4-17) children, social care ~4%; every child is known to 1-3 sectors. Each
    child has a unique valid NHS number from the 999 range while the ~909,000 valid numbers
    last (children beyond that get none, with a warning); school-age children have a unique
    valid UPN.

Where they live (:mod:`.areas`)
    Households live in the registry's authority areas, drawn with the areas' child
    populations, and move house (about 10% of children a year, 4% across an authority
    boundary: :mod:`childindex.simulation.england`), with two years of moves before the
    first night. A child's record in a sector is held by the sector's organisation serving
    the household's area; a move across a boundary while involved closes that record (the
    old area's organisation re-sends it with an end date) and the new area's organisation
    registers the child under a new local id (its *registration*). Each registered
    organisation's extract uses its contract's layout, file name, encoding and completion
    convention; local ids are unique within the sector's organisations (health ``H`` + 8
    digits, education ``P`` + 8 digits, ... by contract).

Night 0 is every organisation's initial load (every involvement, open or closed, and the
records earlier moves closed). Night k >= 1 is a delta: the base population evolved
through nights 1..k (re-derived each time), and only the rows that changed on night k:
births (new health records), new social care cases, school admissions, house moves
(re-sent by every organisation with an open involvement; across a boundary, a closed record
and a new one), leavers (end date set to that night) and corrections (an earlier typo
fixed, row re-sent). Every organisation gets a file every night, empty (header only) when
nothing of its changed.

Noise model (:class:`NoiseConfig`, rates per record unless stated; each decision is keyed
on (seed, sector, child, registration), or on the household, so a re-sent row keeps its
noise and a child's records in two areas were keyed in separately):
    typo           2%    one substitution, deletion or transposition in the given or the
                         family name (never the first letter); nightly corrections remove it
    nickname       3%    Bill for William, Kate for Katherine, ... (either direction, ~80
                         pairs by sex), drawn among names that have a partner
    surname        1.5%  hyphenated ("Smith-Jones") or replaced by another surname; keyed on
                         the household, so twins change together
    dob swap       0.5%  of records whose date of birth has day <= 12 and day != month
    missing NHS    health 3%, social care 30% (education never sends one)
    missing UPN    education 2%, social care 50% (health never sends one)
    stale address  3%    of children known to 2+ sectors: one record still holds the
                         previous address and postcode (until a real move is sent)
    duplicates     0.3% of health and social care records, 0.1% of education's: a second
                         registration of the child in the same organisation (another local
                         id; half without the NHS number)
    twins          1.5%  of children: same surname, date of birth, address and postcode,
                         different given names, NHS numbers and UPNs (truth ``twin=True``)
    siblings       10%   of pairs of children (ids 4r+2, 4r+3) join the household of the
                         pair before them: same surname, address and postcode, their own
                         dates of birth (truth ``household`` in the identity frame)
Noise never touches the ground truth, which maps every written (organisation, local_id) to
the generator's person_id, with the record's area and whether the child has crossed an
authority boundary (``crossed``).

Noise profiles (``NoiseConfig.profile(name)``, names in ``PROFILES``; ``childindex generate
--noise-profile``): ``default`` is the model above, the world the bundled linkage model was
trained on. ``harsh`` (``NoiseConfig.harsh()``) tests linkage beyond that world: the rates
below, and everything not listed (missing identifiers, stale addresses, twins, siblings) as
in ``default``. Its extra kinds are keyed like the others (a re-sent record keeps them) and
are off (rate 0, no draw made) in ``default``, whose files they leave byte-identical.
    ===================  =======  ========================================================
    kind                 harsh    what (default's rate in brackets)
    ===================  =======  ========================================================
    typo                 8%       as above (2%); 10% of them get a second edit in the same
                                  name (``typo_second``; 0)
    nickname             5%       as above (3%)
    phonetic             5%       the given or the family name respelled as it sounds, by
                                  one rule among those matching it (noise.PHONETIC_RULES:
                                  PH/F, CK/K/C, C/K, Y/I/IE, doubled/single letters, silent
                                  GH and H, -SON/-SEN, -ER/-A, EI/IE, Z/S, ...) (0)
    ocr                  2%       the given or the family name misread by a scanner, one
                                  rule among those matching it (noise.OCR_RULES: rn/m,
                                  cl/d, vv/w, li/h, ii/u, e/c, o/a, ...; lowercase letters,
                                  so the name stays alphabetic with its initial) (0)
    transposed           1.5%     given and family names swapped between the fields (0)
    missing given name   1%       blank (a required field when this profile was made: the
                                  contract decides whether intake keeps the row) (0)
    missing dob          1%       blank (likewise) (0)
    missing postcode     1%       blank (likewise) (0)
    missing sex          1%       blank (likewise) (0)
    surname              4%+1%    as above, keyed on the household (1.5%); and 1% of
                                  records changed on their own (``surname_change_record``;
                                  0)
    dob swap             2%       as above (0.5%)
    dob typo             3%       one digit of the day, month or year changed (a third
                                  each, when one gives a valid date within the 25 years
                                  before the night) (0)
    postcode swap        3%       the unit letters swapped (45%), the sector digit (25%)
                                  or the district's last digit (20%) changed, all keeping
                                  the postcode's shape; or the sector digit and the first
                                  unit letter swapped (10%), which breaks it (0)
    duplicates           1%       of every sector's records (0.3%, 0.1%, 0.3%)
    ===================  =======  ========================================================
"""

from childindex.simulation.synthetic.generator import GenerationResult, generate_night
from childindex.simulation.synthetic.noise import PROFILES, NoiseConfig
from childindex.simulation.synthetic.population import Population, build_population
from childindex.simulation.synthetic.records import column_layout, true_identity_frame

__all__ = [
    "GenerationResult",
    "NoiseConfig",
    "PROFILES",
    "Population",
    "build_population",
    "column_layout",
    "generate_night",
    "true_identity_frame",
]
