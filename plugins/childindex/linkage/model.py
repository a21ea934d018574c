"""The Splink model: what is compared, how pairs are blocked, how it is trained and kept.

Comparisons (each with a null level where a value can be missing):

- given name: exact (term-frequency adjusted), one edit, a nickname or short form of the
  same formal name, one a prefix of the other ("Stan", "Stanley"), Jaro-Winkler;
- family name: exact (term-frequency adjusted), one edit, a shared part of a
  double-barrelled name, Jaro-Winkler;
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
DETERMINISTIC_RECALL = 0.88
M_FLOOR = 1e-4  # see smooth()


def comparisons() -> list[Any]:
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    given = cl.CustomComparison(
        output_column_name="given",
        comparison_levels=[
            cll.NullLevel("given"),
            cll.ExactMatchLevel("given", term_frequency_adjustments=True),
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
        cl.PostcodeComparison("postcode"),
        cl.ExactMatch("sex"),
        # An organisation keeps one record per child (one local id), so two of its records
        # are rarely one child (a duplicate registration); two children who share a name
        # and a birthday often are. Two organisations of one sector (a child's old and new
        # authority) are ordinary candidates: that is the case the index exists for.
        cl.ExactMatch("organisation"),
        identifier_comparison("nhs_key"),
        identifier_comparison("upn_key"),
    ]


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


def blocking_rules() -> list[Any]:
    """Pairs worth scoring. Chosen so that >= 99.5% of true pairs meet at least one rule
    (measured by :func:`childindex.linkage.quality.blocking_recall`)."""
    from splink import block_on

    return [
        block_on("nhs_key"),
        block_on("upn_key"),
        block_on("given", "family"),
        block_on("family", "postcode"),
        block_on("given", "postcode"),
        # A birthday alone makes blocks too large at national scale (a million children
        # share about 6,600 birthdays): pair it with an initial or the postcode district.
        block_on("dob", "substr(family, 1, 1)"),
        block_on("dob", "substr(given, 1, 1)"),
        block_on("dob", "substr(postcode, 1, 3)"),
        block_on("substr(dob, 1, 4)", "given_formal[1]", "substr(family, 1, 2)"),
    ]


def settings_creator() -> Any:
    from splink import SettingsCreator

    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=comparisons(),
        blocking_rules_to_generate_predictions=blocking_rules(),
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
        additional_columns_to_retain=[],
    )


@dataclass
class TrainingReport:
    records: int
    seconds: float
    probability_two_random_records_match: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def train(con: Any, features: str, max_pairs_for_u: float = 5e6, seed: int = 42) -> tuple[dict, TrainingReport]:
    """Train a model on table ``features`` (see :mod:`childindex.linkage.features`).

    Returns the Splink settings dict with trained m and u, and counts about the run.
    """
    import time

    from splink import DuckDBAPI, Linker, block_on

    start = time.perf_counter()
    db_api = DuckDBAPI(connection=con)
    linker = Linker(db_api.register(features), settings_creator(), log_level=logging.WARNING)
    # The share of pairs that match, from rules that are nearly certain when they fire.
    # Together they find about 88% of true pairs in the generator's data (identifiers are
    # often missing, and health and education never share one).
    linker.training.estimate_probability_two_random_records_match(
        [block_on("nhs_key"), block_on("upn_key"), block_on("given", "family", "dob")], recall=DETERMINISTIC_RECALL
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=max_pairs_for_u, seed=seed)
    # m by EM. Each session holds fixed what it blocks on and estimates the rest. Blocking
    # on the (fixed) identifiers gives sessions whose pairs are nearly all true matches, so
    # twins, who share a birthday, surname and address, cannot pass for matches that
    # happen to disagree on the given name.
    for rule in (block_on("nhs_key"), block_on("upn_key"), block_on("given", "family")):
        linker.training.estimate_parameters_using_expectation_maximisation(rule, estimate_without_term_frequencies=True)
    model = smooth(linker.misc.save_model_to_json())
    records = con.execute(f"SELECT count(*) FROM {features}").fetchall()[0][0]
    report = TrainingReport(
        records=records,
        seconds=round(time.perf_counter() - start, 2),
        probability_two_random_records_match=model["probability_two_random_records_match"],
    )
    return model, report


def smooth(model: dict, floor: float = M_FLOOR) -> dict:
    """Give every level of a match at least ``floor`` probability, then renormalise.

    Training data that never shows an error (no twin of a record with its sex mistyped,
    say) would otherwise leave m at zero or untrained, and a single such error in real
    data would veto a true match outright."""
    for comparison in model["comparisons"]:
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        if any(lv.get("fix_m_probability") for lv in levels):
            continue
        for lv in levels:
            lv["m_probability"] = max(lv.get("m_probability") or 0.0, floor)
        total = sum(lv["m_probability"] for lv in levels)
        for lv in levels:
            lv["m_probability"] /= total
    return model


def save_model(model: dict, directory: Path, report: TrainingReport) -> Path:
    """Write ``model`` as the next version in ``directory``: ``linkage-model-vNNNN.json``.

    Versions are never overwritten, so a night can always say which model linked it.
    """
    import splink

    directory.mkdir(parents=True, exist_ok=True)
    version = max((_version(p) for p in directory.glob("linkage-model-v*.json")), default=0) + 1
    path = directory / f"linkage-model-v{version:04d}.json"
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


def current_model_path(directory: Path) -> Path:
    """The newest trained model, or the bundled one (trained on synthetic data)."""
    versions = sorted(directory.glob("linkage-model-v*.json"), key=_version) if directory.exists() else []
    return versions[-1] if versions else BUNDLED_MODEL


@dataclass(frozen=True)
class LoadedModel:
    settings: dict  # Splink's settings, with trained m and u
    version: int  # 0 for the bundled model
    trained_records: int

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
    return LoadedModel(payload["splink_settings"], int(payload["version"]), int(payload["training"]["records"]))
