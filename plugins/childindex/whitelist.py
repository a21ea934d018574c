"""The one place that says which fields about a child may ever reach childindex.

Every extract contract maps its columns onto these fields; intake drops any other column
before anything else is done with the file, and the staging layout and the index schema
are derived from this list. Adding a field here is a privacy decision: it needs a reason
that answers "how does this help a practitioner reach another professional?".
"""

from __future__ import annotations

from typing import Literal

# Fields an organisation may send, by meaning. Identifiers are pseudonymised at intake and never
# stored in clear.
IDENTIFIER_FIELDS = ("local_id", "nhs_number", "upn")
IDENTITY_FIELDS = ("given_name", "family_name", "date_of_birth", "sex", "postcode")
INVOLVEMENT_FIELDS = ("service", "contact_route", "involvement_start", "involvement_end")
# A flag, not stored: an organisation marks an involvement as sensitive (sexual health, substance
# misuse, a refuge), and the index then keeps only that a sensitive service is involved and
# how to reach it: never the service type, never the record's address.
FLAG_FIELDS = ("sensitive",)
SENSITIVE_SERVICE = "sensitive"  # what the index shows instead of a shielded service's type
SOURCE_FIELDS = IDENTIFIER_FIELDS + IDENTITY_FIELDS + INVOLVEMENT_FIELDS + FLAG_FIELDS

# Fields every contract must map, each to a column every file's header must have. A blank
# value rejects the row, except in an identity field (IDENTITY_FIELDS) when the contract's
# ``missing_identity`` option says such a row is still staged.
REQUIRED_FIELDS = (
    "local_id",
    "given_name",
    "family_name",
    "date_of_birth",
    "sex",
    "postcode",
    "service",
    "contact_route",
)

# The identity fields that together tell one child from another: under a contract's
# ``missing_identity: stage`` a row without an NHS number or UPN may lack at most one of them.
NAME_AND_BIRTH_FIELDS = ("given_name", "family_name", "date_of_birth")

# Date-typed fields (parsed with the contract's date format).
DATE_FIELDS = ("date_of_birth", "involvement_start", "involvement_end")

# Sex after standardisation: M, F or U (not known / not stated).
Sex = Literal["M", "F", "U"]

# The sector an organisation (and so each of its involvements) belongs to.
SECTORS = ("education", "health", "social_care")
Sector = Literal["education", "health", "social_care"]

# Longest value accepted per field (characters): the index's column sizes. A longer value
# is a broken export (or an attempt to smuggle text in), so the row is rejected.
MAX_LENGTH = {"local_id": 100, "given_name": 100, "family_name": 100, "contact_route": 200}
