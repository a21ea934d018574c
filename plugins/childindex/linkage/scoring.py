"""Scoring tonight's records with the Splink model, and turning scores into decisions.

Tonight's records are compared with each other (``predict_within``) and with the records
already in the index (``predict_between``), never the index with itself: its pairs were
decided on earlier nights. Each scored pair then gets one outcome:

- ``link``: the model is sure (at least the match threshold), or a person said so;
- ``review``: the model is unsure (between the thresholds), or the given names only
  loosely resemble each other with no shared identifier ("Ella" and "Ellie" may be one
  child with a typo, or twins);
- nothing, when the probability is below the review threshold, the pseudonymised NHS
  numbers or UPNs differ (different children, whatever else agrees), the given names do
  not resemble each other at all with no shared identifier (twins share a birthday,
  surname and address; their given names are what tells them apart), or a person said
  they are different children.
"""

from __future__ import annotations

import logging
from typing import Any

from childindex.linkage.blocking import rules_for_run
from childindex.linkage.model import GIVEN_LOOSE_LEVELS, TF_COLUMNS, LoadedModel
from childindex.settings import LinkageSettings

log = logging.getLogger(__name__)

# Each reason decide() gives (besides a person's ``decided``) and its one outcome. Those
# sent for review are explained to the reviewer in linkage.review.REASONS (a test holds
# the two together); a reason missing here fails the night's SQL rather than queue a pair
# nobody can explain.
OUTCOME_OF = {
    "probable_match": "link",
    "identifiers_differ": "none",
    "given_names_differ": "none",
    "given_names_resemble": "review",
    "probability_between_thresholds": "review",
}


def score(con: Any, model: LoadedModel, lower: float) -> int:
    """Create table ``scored`` (new_key, other_key, p, gamma_*) with every
    pair from tonight's records to themselves and to the index at or above probability
    ``lower``. Returns the pairs scored.

    Tonight's records and the index's are the features tables ``new_f`` and ``old_f``
    (:func:`childindex.linkage.features.register_features`), their blocks already bounded
    (:mod:`.bounds`)."""
    from splink import DuckDBAPI, Linker

    # Matching columns bring the gamma (level) columns with them, which decide() reads.
    population = con.execute("SELECT (SELECT count(*) FROM new_f) + (SELECT count(*) FROM old_f)").fetchall()[0][0]
    settings = dict(
        model.for_population(population),
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=True,
        blocking_rules_to_generate_predictions=rules_for_run(con, "new_f", "old_f"),
    )
    db_api = DuckDBAPI(connection=con)
    new_sdf = db_api.register("new_f", table_name="new_records_in")
    old_sdf = db_api.register("old_f", table_name="old_records_in")
    linker = Linker(new_sdf, settings, log_level=logging.WARNING)
    # Term frequencies of the names across everything the index will hold: computed here,
    # kept nowhere (a table of names and their counts is itself personal data).
    for col in TF_COLUMNS:
        con.execute(f"""
            CREATE OR REPLACE TABLE tf_{col} AS
            SELECT {col}, count(*) / sum(count(*)) OVER () AS tf_{col}
            FROM (SELECT {col} FROM new_f UNION ALL SELECT {col} FROM old_f) WHERE {col} IS NOT NULL GROUP BY 1
        """)
        linker.table_management.register_term_frequency_lookup(db_api.register(f"tf_{col}"), col)
    within = linker.inference.predict_within(new_sdf, threshold_match_probability=lower, warning_mode="never")
    cols = "match_probability AS p, gamma_given, gamma_nhs_key, gamma_upn_key"
    con.execute(f"""
        CREATE OR REPLACE TABLE scored AS
        SELECT unique_id_l AS new_key, unique_id_r AS other_key, {cols} FROM {within.physical_name}
    """)
    within.drop_table_from_database_and_remove_from_cache()
    # An empty index (a first load) has nothing to score against: a second prediction
    # would only cost its set-up.
    if con.execute("SELECT count(*) FROM old_f").fetchall()[0][0]:
        between = linker.inference.predict_between(
            old_sdf, new_sdf, threshold_match_probability=lower, warning_mode="never"
        )
        # Either side of a pair may be tonight's record: an equi-join tells which (an IN
        # join against the whole index would be a nested loop).
        con.execute(f"""
            INSERT INTO scored
            SELECT CASE WHEN n.unique_id IS NULL THEN b.unique_id_r ELSE b.unique_id_l END,
                   CASE WHEN n.unique_id IS NULL THEN b.unique_id_l ELSE b.unique_id_r END, {cols}
            FROM {between.physical_name} b LEFT JOIN new_f n ON n.unique_id = b.unique_id_l
        """)
        between.drop_table_from_database_and_remove_from_cache()
    return con.execute("SELECT count(*) FROM scored").fetchall()[0][0]


def decide(con: Any, linkage: LinkageSettings, veto_unrelated_given: bool = True) -> None:
    """Table ``outcome`` (new_key, other_key, p, outcome, reason) from
    ``scored`` and people's decisions (table ``decision``: key_a < key_b, decision).

    ``veto_unrelated_given``: refuse pairs whose given names are unrelated, and send to
    review those whose given names only loosely resemble each other, when they share no
    identifier (the twins guard). The model says whether it applies:
    :attr:`LoadedModel.vetoes_unrelated_given_names`. Without it such pairs are judged by
    their probability like any other."""
    loose = ", ".join(str(level) for level in GIVEN_LOOSE_LEVELS)
    outcomes = " ".join(f"WHEN '{reason}' THEN '{outcome}'" for reason, outcome in OUTCOME_OF.items())
    con.execute(
        f"""
        CREATE OR REPLACE TABLE outcome AS
        WITH judged AS (
            SELECT s.*, d.decision,
                   (gamma_nhs_key = 1 OR gamma_upn_key = 1) AS shares_id
            FROM scored s LEFT JOIN decision d
              ON d.key_a = least(s.new_key, s.other_key) AND d.key_b = greatest(s.new_key, s.other_key)),
        reasoned AS (
            SELECT new_key, other_key, p, decision,
                CASE
                    WHEN decision IS NOT NULL THEN 'decided'
                    WHEN gamma_nhs_key = 0 OR gamma_upn_key = 0 THEN 'identifiers_differ'
                    WHEN NOT shares_id AND gamma_given = 0 AND $veto THEN 'given_names_differ'
                    WHEN NOT shares_id AND gamma_given IN ({loose}) AND $veto THEN 'given_names_resemble'
                    WHEN p >= $match THEN 'probable_match'
                    ELSE 'probability_between_thresholds'
                END AS reason
            FROM judged)
        -- Each reason has one outcome (OUTCOME_OF); a decision's is the decision.
        SELECT new_key, other_key, p,
            CASE reason
                WHEN 'decided' THEN CASE decision WHEN 'match' THEN 'link' ELSE 'none' END
                {outcomes}
                ELSE error('a linkage reason without an outcome (scoring.OUTCOME_OF)')
            END AS outcome,
            reason
        FROM reasoned
        UNION ALL
        -- A person's "same child" stands on every night, whatever the model says.
        SELECT d.key_a, d.key_b, NULL, 'link', 'decided' FROM decision d
        WHERE d.decision = 'match'
    """,
        {"match": linkage.match_threshold, "veto": veto_unrelated_given},
    )
