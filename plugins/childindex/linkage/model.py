"""The Splink model: what is compared, how pairs are blocked, how it is trained and kept.

Comparisons (each with a null level where a value can be missing):

- given name: exact (term-frequency adjusted), the names transposed between the fields, one
  name in the other field (the other name different), one edit, a nickname or short form of the
  same formal name, one a prefix of the other ("Stan", "Stanley"), Jaro-Winkler;
- family name: exact (term-frequency adjusted), one edit, a shared part of a
  double-barrelled name, Jaro-Winkler (the two name-swap levels are weighed once, with the
  given name);
- date of birth: exact, one character different, day and month swapped, within a month,
  within a year (dates reach Splink as ISO strings: Splink issue #2714);
- postcode: full, sector, district, area; sex; the organisation (same or different); and the
  pseudonymised NHS number and UPN, exact only, since they are keyed hashes: any
  difference is a different number.

u is estimated by random sampling and m by expectation-maximisation; the result is a
versioned JSON file (:func:`save_model`). It holds probabilities only: no names, no term
frequencies, nothing about any child.
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MODEL_FORMAT = 1
BUNDLED_MODEL = Path(__file__).with_name("default_model.json")
TF_COLUMNS = ("given", "family")
# Identifier levels (see identifier_comparison): a keying error that passes the check digit
# is about 1 in 1,000 records; two different children share a number only by such an error.
IDENTIFIER_M = 0.999
IDENTIFIER_U = 1e-8
# Gamma values of the given-name levels that are only a loose resemblance (Jaro-Winkler
# 0.8 and 0.9; 0 is "anything else"); checked against comparisons() by a test.
GIVEN_LOOSE_LEVELS = (1, 2)
# A name keyed into the other field ("Smith", "John" for "John", "Smith"): a level of both
# name comparisons, so the pair is not read as two different names.
# One name equal, the other at most one edit away: a transposed name is often mistyped too.
TRANSPOSED = (
    "(given_l = family_r AND damerau_levenshtein(family_l, given_r) <= 1) OR "
    "(family_l = given_r AND damerau_levenshtein(given_l, family_r) <= 1)"
)
# One name keyed into the other field, the other name different ("Joel Bordin", "Bordin
# Brody"): a name swapped between fields and the other lost or replaced. Twins and siblings
# share a family name, not one's given name as the other's family name, so this is no twins risk.
CROSSED = "given_l = family_r OR family_l = given_r"
NEUTRAL = 1e-5  # m = u: a level that moves the match weight neither way
# decide() refuses a pair whose given names are unrelated (no shared identifier), the twins
# guard, when the model could learn about twins: its given-name m came from pairs sharing
# an NHS number or UPN, where twins (same birthday, surname and address, other given names)
# cannot pass for matches. A model trained on data without identifiers learns how often
# its matches' given names really differ; the guard then holds only if that is rare.
IDENTIFIER_SESSIONS = ("nhs_key", "upn_key")
GIVEN_VETO_MAX_M = 0.05
DETERMINISTIC_RECALL = 0.88
M_FLOOR = 1e-4  # see smooth()
U_UNMIX_ROUNDS = 3  # see train(): u corrected for the matches among random pairs, until the prior settles


def comparisons() -> list[Any]:
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    given = cl.CustomComparison(
        output_column_name="given",
        comparison_levels=[
            cll.NullLevel("given"),
            cll.ExactMatchLevel("given", term_frequency_adjustments=True),
            cll.CustomLevel(TRANSPOSED, "Given and family names transposed"),
            cll.CustomLevel(CROSSED, "One name in the other field, the other name different"),
            cll.DamerauLevenshteinLevel("given", 1),
            cll.CustomLevel("list_has_any(given_formal_l, given_formal_r)", "Nickname or same formal name"),
            cll.CustomLevel(
                "least(length(given_l), length(given_r)) >= 3 AND "
                "(starts_with(given_l, given_r) OR starts_with(given_r, given_l))",
                "One a short form of the other",
            ),
            cll.JaroWinklerLevel("given", 0.9),
            cll.JaroWinklerLevel("given", 0.8),
            cll.ElseLevel(),
        ],
    )
    family = cl.CustomComparison(
        output_column_name="family",
        comparison_levels=[
            cll.NullLevel("family"),
            cll.ExactMatchLevel("family", term_frequency_adjustments=True),
            # Counted once, in the given name's comparison: here it weighs nothing either way.
            cll.CustomLevel(TRANSPOSED, "Given and family names transposed (weighed with the given name)").configure(
                m_probability=NEUTRAL, u_probability=NEUTRAL, fix_m_probability=True, fix_u_probability=True
            ),
            cll.CustomLevel(CROSSED, "One name in the other field (weighed with the given name)").configure(
                m_probability=NEUTRAL, u_probability=NEUTRAL, fix_m_probability=True, fix_u_probability=True
            ),
            cll.DamerauLevenshteinLevel("family", 1),
            cll.CustomLevel("list_has_any(family_parts_l, family_parts_r)", "Shares a part of the name"),
            cll.JaroWinklerLevel("family", 0.9),
            cll.ElseLevel(),
        ],
    )
    dob = cl.CustomComparison(
        output_column_name="dob",
        comparison_levels=[
            cll.NullLevel("dob"),
            cll.ExactMatchLevel("dob"),
            cll.DamerauLevenshteinLevel("dob", 1),
            cll.CustomLevel(
                "substr(dob_l, 1, 4) = substr(dob_r, 1, 4) AND substr(dob_l, 6, 2) = substr(dob_r, 9, 2) "
                "AND substr(dob_l, 9, 2) = substr(dob_r, 6, 2)",
                "Day and month swapped",
            ),
            cll.AbsoluteDateDifferenceLevel("dob", input_is_string=True, threshold=1, metric="month"),
            cll.AbsoluteDateDifferenceLevel("dob", input_is_string=True, threshold=1, metric="year"),
            cll.ElseLevel(),
        ],
    )
    return [
        given,
        family,
        dob,
        postcode_comparison(),
        cl.ExactMatch("sex"),
        # An organisation keeps one record per child (one local id), so two of its records
        # are rarely one child (a duplicate registration); two children who share a name
        # and a birthday often are. Two organisations of one sector (a child's old and new
        # authority) are ordinary candidates: that is the case the index exists for.
        cl.ExactMatch("organisation"),
        identifier_comparison("nhs_key"),
        identifier_comparison("upn_key"),
    ]


def postcode_comparison() -> Any:
    """Full, one character off (a mistyped or two swapped characters: "DH1 7AA" for
    "DH7 1AA"), sector, district, area."""
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    from childindex.linkage.features import POSTCODE_PARTS

    # The compact form and the parts are computed once per record (linkage.features), not
    # for every pair compared: a million children's initial load compares hundreds of
    # millions of pairs.
    levels: list[Any] = [cll.NullLevel("postcode"), cll.ExactMatchLevel("postcode")]
    # Without the space, so the digits either side of it swapped are one transposition.
    squashed = "damerau_levenshtein(postcode_compact_l, postcode_compact_r) <= 1"
    levels.append(cll.CustomLevel(squashed, "One character different or two swapped"))
    for name in POSTCODE_PARTS:
        levels.append(cll.CustomLevel(f"postcode_{name}_l = postcode_{name}_r", f"Same postcode {name}"))
    levels.append(cll.ElseLevel())
    return cl.CustomComparison(output_column_name="postcode", comparison_levels=levels)


def identifier_comparison(column: str) -> Any:
    """A keyed hash of a check-digit-validated number: equal means the same number, and a
    different number for the same child takes a keying error that still passes the check.

    Both levels are fixed rather than trained: unsupervised EM otherwise learns from twins
    (same birthday, surname and address, different numbers) that matches often disagree
    on identifiers, the one mistake that would merge twins.
    """
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    return cl.CustomComparison(
        output_column_name=column,
        comparison_levels=[
            cll.NullLevel(column),
            cll.ExactMatchLevel(column).configure(
                m_probability=IDENTIFIER_M, u_probability=IDENTIFIER_U, fix_m_probability=True, fix_u_probability=True
            ),
            cll.ElseLevel().configure(
                m_probability=1 - IDENTIFIER_M,
                u_probability=1 - IDENTIFIER_U,
                fix_m_probability=True,
                fix_u_probability=True,
            ),
        ],
    )


def settings_creator() -> Any:
    from splink import SettingsCreator

    from childindex.linkage.blocking import blocking_rules

    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=comparisons(),
        blocking_rules_to_generate_predictions=blocking_rules(),
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
        additional_columns_to_retain=[],
    )


# EM sessions in order of preference, as the columns each blocks on. A session holds
# fixed the comparisons that read what it blocks on and estimates the rest.
# - The identifiers first: their pairs are nearly all true matches, so twins (same
#   birthday, surname and address) cannot pass for matches that disagree on a given name.
# - Then the names. Data without identifiers (or with too few pairs sharing one) then
#   leaves the names themselves unestimated: a session on the date of birth, the postcode
#   or a name with the date of birth estimates them, used only for what is still missing.
EM_SESSIONS: tuple[tuple[str, ...], ...] = (
    ("nhs_key",),
    ("upn_key",),
    ("given", "family"),
    ("dob",),
    ("postcode",),
    ("family", "dob"),
    ("given", "dob"),
)
# The feature columns each trainable comparison reads (see comparisons()).
COMPARISON_COLUMNS = {
    "given": ("given", "given_formal", "family"),
    "family": ("family", "family_parts", "given"),
    "dob": ("dob",),
    "postcode": ("postcode",),
    "sex": ("sex",),
    "organisation": ("organisation",),
}
# A session needs enough pairs for EM to learn from, and few enough to run in memory (a
# birthday alone blocks 75 million pairs among a million children).
MIN_SESSION_PAIRS = 100
U_MIN_PAIRS, U_PAIRS_PER_RECORD = 2_000_000, 100
MAX_SESSION_PAIRS = 20_000_000


@dataclass
class TrainingReport:
    records: int
    seconds: float
    probability_two_random_records_match: float
    sessions: list[str]  # the EM sessions run, as their blocking columns
    session_pairs: dict[str, int]  # pairs each candidate session would block (counts only)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def session_pairs(con: Any, features: str) -> dict[str, int]:
    """Pairs each candidate EM session would block: records equal (and not NULL) on its columns."""
    out = {}
    for cols in EM_SESSIONS:
        keys = ", ".join(cols)
        present = " AND ".join(f"{c} IS NOT NULL" for c in cols)
        out["+".join(cols)] = int(
            con.execute(
                f"SELECT coalesce(sum(n * (n - 1) // 2), 0) FROM (SELECT count(*) n FROM {features} "
                f"WHERE {present} GROUP BY {keys})"
            ).fetchall()[0][0]
        )
    return out


def choose_sessions(pairs: dict[str, int]) -> list[tuple[str, ...]]:
    """The EM sessions to run (see EM_SESSIONS): every usable identifier or name session,
    then later ones only while some comparison is still unestimated. Raises
    TrainingImpossible, naming the comparisons, when no usable session leaves them free."""
    from childindex.errors import TrainingImpossible

    chosen: list[tuple[str, ...]] = []
    estimated: set[str] = set()
    for cols in EM_SESSIONS:
        if not MIN_SESSION_PAIRS <= pairs["+".join(cols)] <= MAX_SESSION_PAIRS:
            continue
        frees = {c for c, read in COMPARISON_COLUMNS.items() if not set(read) & set(cols)}
        if cols in EM_SESSIONS[:3] or frees - estimated:
            chosen.append(cols)
            estimated |= frees
    missing = sorted(set(COMPARISON_COLUMNS) - estimated)
    if missing:
        counts = ", ".join(f"{k} {v:,}" for k, v in pairs.items())
        raise TrainingImpossible(
            f"cannot train: no blocking rule leaves {', '.join(missing)} free with "
            f"{MIN_SESSION_PAIRS:,} to {MAX_SESSION_PAIRS:,} pairs (pairs by rule: {counts})"
        )
    return chosen


def train(con: Any, features: str, max_pairs_for_u: float = 5e6, seed: int = 42) -> tuple[dict, TrainingReport]:
    """Train a model on table ``features`` (see :mod:`childindex.linkage.features`).

    Returns the Splink settings dict with trained m and u, and counts about the run.
    """
    import time

    from splink import DuckDBAPI, Linker, block_on

    start = time.perf_counter()
    pairs = session_pairs(con, features)
    sessions = choose_sessions(pairs)
    db_api = DuckDBAPI(connection=con)
    linker = Linker(db_api.register(features), settings_creator(), log_level=logging.WARNING)
    # A first guess at the share of pairs that match, from rules that are nearly certain
    # when they fire (they find about 88% of true pairs in the generator's data, far fewer
    # in noisier data): estimate_prior() replaces it once m and u are known.
    linker.training.estimate_probability_two_random_records_match(
        [block_on("nhs_key"), block_on("upn_key"), block_on("given", "family", "dob")], recall=DETERMINISTIC_RECALL
    )
    # Enough random pairs to see levels as rare as one in a million, without sampling most
    # of a small dataset's pairs (5,000 records have 12.5 million).
    n = con.execute(f"SELECT count(*) FROM {features}").fetchall()[0][0]
    u_pairs = min(max_pairs_for_u, max(U_MIN_PAIRS, U_PAIRS_PER_RECORD * n))
    linker.training.estimate_u_using_random_sampling(max_pairs=u_pairs, seed=seed)
    for cols in sessions:
        linker.training.estimate_parameters_using_expectation_maximisation(
            block_on(*cols), estimate_without_term_frequencies=True
        )
    model = smooth(linker.misc.save_model_to_json())
    sampled = copy.deepcopy(model["comparisons"])
    model["probability_two_random_records_match"] = estimate_prior(con, features, model)
    # Random pairs include the matches among them: u from them is P(level | match) * prior too
    # much. Negligible in a large index; in a small or densely duplicated extract (FEBRL1:
    # a match in every thousand pairs) it understates every agreement, transposed names by
    # 4 bits. Taken out with the prior and m just estimated, then the prior re-estimated.
    for _ in range(U_UNMIX_ROUNDS):
        prior = model["probability_two_random_records_match"]
        model["comparisons"] = unmix_u(sampled, prior, floor=1 / min(u_pairs, max(n * (n - 1) / 2, 1)))
        model["probability_two_random_records_match"] = estimate_prior(con, features, model)
        if abs(model["probability_two_random_records_match"] / prior - 1) < 0.01:
            break
    records = con.execute(f"SELECT count(*) FROM {features}").fetchall()[0][0]
    report = TrainingReport(
        records=records,
        seconds=round(time.perf_counter() - start, 2),
        probability_two_random_records_match=model["probability_two_random_records_match"],
        sessions=["+".join(cols) for cols in sessions],
        session_pairs=pairs,
    )
    return model, report


def estimate_prior(con: Any, features: str, model: dict, iterations: int = 50) -> float:
    """The share of record pairs that match, by expectation-maximisation over the pairs
    the blocking rules compare, with m and u held fixed.

    Each pair's Bayes factor comes from one prediction; the prior is then the expected
    number of matches among them over all pairs of records, until it settles. Unlike a
    deterministic rule's count divided by an assumed recall, it holds for data as noisy
    as it comes: the noisier the data, the fewer matches such a rule finds, and the
    assumed recall would shrink the prior with it. Pairs no rule compares count as
    non-matches (blocking keeps at least 99.5% of true pairs)."""
    import math

    from splink import DuckDBAPI, Linker

    n = con.execute(f"SELECT count(*) FROM {features}").fetchall()[0][0]
    total = n * (n - 1) / 2
    prior = model["probability_two_random_records_match"]
    if total <= 0:
        return prior
    from childindex.linkage.blocking import rules_for_run

    settings = dict(model, blocking_rules_to_generate_predictions=rules_for_run(con, features))
    linker = Linker(DuckDBAPI(connection=con).register(features), settings, log_level=logging.WARNING)
    predictions = linker.inference.predict(threshold_match_probability=None, warning_mode="never")
    logit = math.log2(prior / (1 - prior))
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE pair_bf AS SELECT match_weight - {logit} AS w FROM {predictions.physical_name}"
    )
    predictions.drop_table_from_database_and_remove_from_cache()
    try:
        for _ in range(iterations):
            logit = math.log2(prior / (1 - prior))
            expected = con.execute(
                "SELECT coalesce(sum(1 / (1 + pow(2, -(w + $logit)))), 0) FROM pair_bf", {"logit": logit}
            ).fetchall()[0][0]
            new = min(max(expected / total, 1e-12), 0.5)
            settled = abs(new / prior - 1) < 1e-4
            prior = new
            if settled:
                break
    finally:
        con.execute("DROP TABLE IF EXISTS pair_bf")
    return prior


def unmix_u(comparisons: list[dict], prior: float, floor: float) -> list[dict]:
    """Comparisons with u taken as P(level | non-match) rather than P(level | random pair):
    a random pair matches with probability ``prior``, so sampled u = prior * m + (1 - prior) * u.
    Solved for u, at least ``floor`` (one pair in the sample: the estimate's resolution),
    and renormalised to what the fixed levels leave. m and the fixed levels are kept."""
    out = copy.deepcopy(comparisons)
    for comparison in out:
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        trained = [lv for lv in levels if not lv.get("fix_u_probability") and lv.get("u_probability") is not None]
        if not trained:
            continue
        room = sum(lv["u_probability"] for lv in trained)
        for lv in trained:
            m = lv.get("m_probability") or 0.0
            lv["u_probability"] = max((lv["u_probability"] - prior * m) / (1 - prior), floor)
        total = sum(lv["u_probability"] for lv in trained)
        for lv in trained:
            lv["u_probability"] *= room / total
    return out


def smooth(model: dict, floor: float = M_FLOOR) -> dict:
    """Give every trained level of a match at least ``floor`` probability, then renormalise
    them to what the fixed levels leave.

    Training data that never shows an error (no twin of a record with its sex mistyped,
    say) would otherwise leave m at zero or untrained, and a single such error in real
    data would veto a true match outright."""
    for comparison in model["comparisons"]:
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        trained = [lv for lv in levels if not lv.get("fix_m_probability")]
        if not trained:
            continue
        room = 1.0 - sum(lv["m_probability"] for lv in levels if lv.get("fix_m_probability"))
        for lv in trained:
            lv["m_probability"] = max(lv.get("m_probability") or 0.0, floor)
        total = sum(lv["m_probability"] for lv in trained)
        for lv in trained:
            lv["m_probability"] *= room / total
    return model


def save_model(model: dict, directory: Path, report: TrainingReport) -> Path:
    """Write ``model`` as the next version in ``directory``: ``linkage-model-vNNNN.json``.

    Versions are never overwritten, so a night can always say which model linked it.
    """
    import splink

    directory.mkdir(parents=True, exist_ok=True)
    version = max((_version(p) for p in directory.glob("linkage-model-v*.json")), default=0) + 1
    path = model_path(directory, version)
    payload = {
        "childindex_model_format": MODEL_FORMAT,
        "version": version,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "splink_version": splink.__version__,
        "training": report.as_dict(),
        "splink_settings": model,
    }
    tmp = path.with_suffix(".json.part")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def _version(path: Path) -> int:
    try:
        return int(path.stem.rsplit("-v", 1)[1])
    except (IndexError, ValueError):
        return 0


def model_path(directory: Path, version: int) -> Path:
    """The file of the model of ``version`` in ``directory`` (0: the bundled one)."""
    return BUNDLED_MODEL if version == 0 else directory / f"linkage-model-v{version:04d}.json"


def current_model_path(directory: Path) -> Path:
    """The newest trained model, or the bundled one (trained on synthetic data)."""
    versions = sorted(directory.glob("linkage-model-v*.json"), key=_version) if directory.exists() else []
    return versions[-1] if versions else BUNDLED_MODEL


@dataclass(frozen=True)
class LoadedModel:
    settings: dict  # Splink's settings, with trained m and u
    version: int  # 0 for the bundled model
    trained_records: int
    reason: str = ""  # which model this is and why a night uses it (for the night's summary)
    # The EM sessions it was trained with; a model from before they were recorded was always
    # trained on the identifiers.
    sessions: tuple[str, ...] = IDENTIFIER_SESSIONS

    @property
    def vetoes_unrelated_given_names(self) -> bool:
        """Whether decide() applies the twins guard (see IDENTIFIER_SESSIONS)."""
        if set(self.sessions) & set(IDENTIFIER_SESSIONS):
            return True
        given = next(c for c in self.settings["comparisons"] if c["output_column_name"] == "given")
        other = given["comparison_levels"][-1]  # the else level
        return (other.get("m_probability") or 0.0) <= GIVEN_VETO_MAX_M

    def for_population(self, records: int) -> dict:
        """Settings for linking among ``records`` records.

        The prior (the chance that two random records match) falls as the population grows:
        each record has about the same number of true partners however many records there
        are. Trained on N records, it is rescaled by N / ``records`` for a larger
        population, so a model trained on a sample is not too eager on a full index; never
        raised for a smaller one."""
        prior = self.settings["probability_two_random_records_match"]
        scaled = prior * min(1.0, self.trained_records / max(records, 1))
        return dict(self.settings, probability_two_random_records_match=scaled)


def load_model(path: Path) -> LoadedModel:
    payload = json.loads(path.read_text(encoding="utf-8"))
    if payload.get("childindex_model_format") != MODEL_FORMAT:
        raise ValueError(f"{path.name}: not a childindex linkage model of format {MODEL_FORMAT}")
    training = payload["training"]
    if path == BUNDLED_MODEL:
        reason = "the bundled model (trained on synthetic data): no model has been trained here yet"
    else:
        named = ", ".join(training.get("sessions", [])) or "not recorded"
        reason = (
            f"trained model v{int(payload['version']):04d} ({payload.get('trained_at', 'date not recorded')}, "
            f"{int(training['records']):,} records, EM sessions: {named}): the newest in the model folder"
        )
    sessions = tuple(training.get("sessions") or IDENTIFIER_SESSIONS)
    return LoadedModel(payload["splink_settings"], int(payload["version"]), int(training["records"]), reason, sessions)
