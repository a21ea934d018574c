"""Noise profiles: ``default`` unchanged (a frozen digest), ``harsh`` deterministic, keyed and
at its rates. Rates are measured kind by kind on one sector's rows built with only that
kind switched on (``NoiseConfig.none()`` plus the kind), against the true identity; the
whole profile on written files, against the truth."""

from __future__ import annotations

import hashlib
import re
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from childindex.contracts import load_contract
from childindex.organisations import Registry
from childindex.simulation.synthetic import (
    PROFILES,
    NoiseConfig,
    Population,
    build_population,
    generate_night,
    true_identity_frame,
)
from childindex.simulation.synthetic import names as T
from childindex.simulation.synthetic.areas import World
from childindex.simulation.synthetic.noise import (
    OCR_RULES,
    PHONETIC_RULES,
    rewrite_strings,
    swap_postcodes,
    swappable,
    typo_dates,
)
from childindex.simulation.synthetic.records import build_chunk, current_records
from childindex.validation.sql import POSTCODE_RE
from tests.simulation.synthetic_helpers import FIRST_NIGHT, Run, as_dates

HARSH = NoiseConfig.harsh()
CHILDREN = 8_000  # for the harsh files
KIND_CHILDREN = 12_000  # for one sector's rows, one kind at a time
SEED = 42
NAME = re.compile(r"^[^\W\d_]+(?:['-][^\W\d_]*)*$")  # letters, with hyphens or apostrophes between
# The default profile's files (the tests' registry, 3000 children, seed 42, nights 0-2),
# digested with _digest() from files generated before the harsh profile existed. A
# deliberate change to the generator's default output changes it: regenerate it then.
DEFAULT_DIGEST = "831e65844c905b16e5d0f4cec73324e39f70884d30a9d1bf32c97754dcedcc55"


def _digest(root: Path) -> str:
    """Every file under ``root``: path and bytes; a truth file by its rows (not the writer's metadata)."""
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.suffix == ".parquet":
            data = pq.read_table(path).to_pandas().to_csv(index=False).encode()
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


def _generate(root: Path, registry: Registry, noise: NoiseConfig, children: int, nights: tuple[int, ...]) -> dict:
    return {
        k: generate_night(
            root / "drop",
            root / "truth",
            registry=registry,
            children=children,
            seed=SEED,
            first_night=FIRST_NIGHT,
            night_number=k,
            noise=noise,
        )
        for k in nights
    }


@pytest.fixture(scope="module")
def harsh_run(tmp_path_factory, test_registry: Registry) -> Run:
    root = tmp_path_factory.mktemp("harsh")
    nights = _generate(root, test_registry, HARSH, CHILDREN, (0, 1))
    world = World(test_registry)
    pops = {
        k: build_population(CHILDREN, seed=SEED, first_night=FIRST_NIGHT, night_number=k, noise=HARSH, world=world)
        for k in (0, 1)
    }
    return Run(drop=root / "drop", truth_root=root / "truth", nights=nights, populations=pops, registry=test_registry)


_POPULATIONS: dict[tuple[int, float, float], Population] = {}


def _rows(registry: Registry, sector: str = "health", **rates: float) -> pd.DataFrame:
    """One sector's current records of every child it knows (night 0), with only ``rates``
    switched on, by contract field, beside the true identity (``true_*``)."""
    noise = replace(NoiseConfig.none(), **rates)
    # A night-0 population depends on its noise only through twins and siblings: one
    # population serves every kind, with the kind's noise.
    shape = (id(registry), noise.twins, noise.siblings)
    if shape not in _POPULATIONS:
        _POPULATIONS[shape] = build_population(
            KIND_CHILDREN, seed=SEED, first_night=FIRST_NIGHT, noise=noise, world=World(registry)
        )
    pop = _POPULATIONS[shape]
    pop.noise = noise
    (org,) = registry.in_sector(sector)
    chunk = build_chunk(pop, org.code, org.contract, current_records(pop, sector, pop.sent[sector]))
    contract = load_contract(org.contract)
    by_name = {c.name: c.field for c in contract.columns}
    df = pd.DataFrame({by_name[n]: col.to_pandas() for n, col in chunk.columns.items() if n in by_name})
    df["dob"] = as_dates(df["date_of_birth"].fillna(""), contract.date_format)
    true = true_identity_frame(pop, chunk.person_id)
    return pd.concat([df, true.add_prefix("true_")], axis=1)


def _osa(a: str, b: str) -> int:
    """Edit distance with adjacent transpositions (optimal string alignment)."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[-1][-1]


# --------------------------------------------------------------------------- the API


def test_profiles() -> None:
    assert PROFILES == ("default", "harsh")
    assert NoiseConfig.profile("default") == NoiseConfig()
    assert NoiseConfig.profile("harsh") == HARSH
    with pytest.raises(ValueError, match="unknown noise profile 'loud'.*default, harsh"):
        NoiseConfig.profile("loud")
    default = NoiseConfig()
    new_kinds = ("typo_second", "phonetic", "ocr", "transposed", "missing_given", "missing_dob",
                 "missing_postcode", "missing_sex", "surname_change_record", "dob_typo", "postcode_swap")  # fmt: skip
    assert all(getattr(default, k) == 0.0 for k in new_kinds)
    assert all(getattr(HARSH, k) > 0.0 for k in new_kinds)
    # Harsher everywhere it differs; the life course drops duplicates with replace().
    assert all(getattr(HARSH, f.name) >= getattr(default, f.name) for f in fields(NoiseConfig))
    assert HARSH.typo > default.typo and HARSH.nickname > default.nickname and HARSH.dob_swap > default.dob_swap
    no_dups = replace(HARSH, duplicate_health=0.0, duplicate_education=0.0, duplicate_social_care=0.0)
    assert no_dups.phonetic == HARSH.phonetic and no_dups.duplicate("health") == 0.0
    with pytest.raises(ValueError, match="phonetic"):
        NoiseConfig(phonetic=1.5)


def test_default_profile_unchanged(tmp_path, test_registry) -> None:
    """Byte for byte what the generator wrote before the harsh profile existed."""
    _generate(tmp_path, test_registry, NoiseConfig.profile("default"), 3_000, (0, 1, 2))
    assert _digest(tmp_path) == DEFAULT_DIGEST


def test_harsh_is_deterministic(tmp_path, test_registry) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for root in (a, b):
        _generate(root, test_registry, NoiseConfig.harsh(), 1_500, (0, 1))
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) > 10 and files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)


def test_cli_noise_profile(data_dir, tmp_path) -> None:
    from childindex.cli import app
    from childindex.settings import load_settings

    runner = CliRunner()
    bad = runner.invoke(app, ["generate", "--children", "100", "--noise-profile", "loud"])
    assert bad.exit_code == 2 and "choose one of default, harsh" in " ".join(bad.output.split())
    args = ["generate", "--children", "300", "--truth-dir", str(tmp_path / "truth")]
    assert runner.invoke(app, [*args, "--noise-profile", "harsh"]).exit_code == 0
    settings = load_settings()
    direct = _generate(tmp_path / "direct", settings.registry, NoiseConfig.harsh(), 300, (0,))[0]
    for code, path in direct.files.items():
        written = settings.registry.drop_folder(code, settings.drop_root) / path.name
        assert written.read_bytes() == path.read_bytes(), code


# --------------------------------------------------------------------------- one kind at a time


def test_phonetic(test_registry) -> None:
    df = _rows(test_registry, phonetic=HARSH.phonetic)
    given = df["given_name"] != df["true_given_name"]
    family = df["family_name"] != df["true_family_name"]
    assert not (given & family).any(), "one name per record"
    assert abs((given | family).mean() - HARSH.phonetic) < 0.01
    assert 0.3 < given[given | family].mean() < 0.7
    changed = pd.concat([df.loc[given, "given_name"], df.loc[family, "family_name"]])
    assert changed.str.match(NAME).all()
    # Whole sounds change, not single letters: e.g. Stephen/Stefen, Catherine/Katherine, Smith/Smyth.
    assert (df.loc[given, "given_name"].str[0] != df.loc[given, "true_given_name"].str[0]).any()


def test_ocr(test_registry) -> None:
    df = _rows(test_registry, ocr=HARSH.ocr)
    given = df["given_name"] != df["true_given_name"]
    family = df["family_name"] != df["true_family_name"]
    assert not (given & family).any()
    assert abs((given | family).mean() - HARSH.ocr) < 0.006
    for col, mask in (("given_name", given), ("family_name", family)):
        new, old = df.loc[mask, col], df.loc[mask, "true_" + col]
        assert new.str.match(NAME).all()
        assert (new.str[0] == old.str[0]).all(), "the initial is kept"


def test_typos_sometimes_two_edits(test_registry) -> None:
    df = _rows(test_registry, typo=HARSH.typo, typo_second=HARSH.typo_second)
    pairs = [
        (new, old)
        for col in ("given_name", "family_name")
        for new, old in zip(df[col], df["true_" + col], strict=True)
        if new != old
    ]
    assert abs(len(pairs) / len(df) - HARSH.typo) < 0.012  # a transposition of equal letters changes nothing
    distances = np.array([_osa(new, old) for new, old in pairs])
    assert set(distances) <= {1, 2}
    assert abs((distances == 2).mean() - HARSH.typo_second) < 0.05
    assert all(new and NAME.match(new) for new, _ in pairs)


def test_transposed_names(test_registry) -> None:
    df = _rows(test_registry, transposed=HARSH.transposed)
    swapped = (df["given_name"] == df["true_family_name"]) & (df["family_name"] == df["true_given_name"])
    assert abs(swapped.mean() - HARSH.transposed) < 0.005
    same = (df["given_name"] == df["true_given_name"]) & (df["family_name"] == df["true_family_name"])
    assert (swapped | same).all()


def test_missing_fields(test_registry) -> None:
    rates = {k: getattr(HARSH, k) for k in ("missing_given", "missing_dob", "missing_postcode", "missing_sex")}
    for sector in ("health", "education"):
        df = _rows(test_registry, sector, **rates)
        for field, rate in zip(("given_name", "date_of_birth", "postcode", "sex"), rates.values(), strict=True):
            blank = df[field].isna()
            assert abs(blank.mean() - rate) < 0.005, (sector, field)
        assert df["family_name"].notna().all()
        present = df["given_name"].notna()
        assert (df.loc[present, "given_name"] == df.loc[present, "true_given_name"]).all()
        # Separate draws: a record rarely misses two fields.
        assert (df[["given_name", "date_of_birth", "postcode", "sex"]].isna().sum(axis=1) >= 2).mean() < 0.003


def test_surname_changes(test_registry) -> None:
    df = _rows(test_registry, surname_change=HARSH.surname_change, surname_change_record=HARSH.surname_change_record,
               siblings=0.1, twins=0.015)  # fmt: skip
    changed = df["family_name"] != df["true_family_name"]
    assert abs(changed.mean() - (HARSH.surname_change + HARSH.surname_change_record)) < 0.012
    hyphen = pd.Series(
        [new.startswith(old + "-") for new, old in zip(df["family_name"], df["true_family_name"], strict=True)],
        index=df.index,
    )
    assert 0.3 < hyphen[changed].mean() < 0.7
    assert (df.loc[changed & ~hyphen, "family_name"].isin(T.SURNAMES)).all()
    # Changed in one record only: household members (twins, siblings) then differ.
    alone = _rows(test_registry, surname_change_record=0.05, siblings=0.1, twins=0.015)
    alone["changed"] = alone["family_name"] != alone["true_family_name"]
    by_household = alone[alone.duplicated("true_household", keep=False)].groupby("true_household")["changed"]
    assert (by_household.nunique() == 2).sum() > 5


def test_dob_typos(test_registry) -> None:
    df = _rows(test_registry, dob_typo=HARSH.dob_typo)
    night = pd.Timestamp(FIRST_NIGHT)
    changed = df[df["dob"] != df["true_date_of_birth"]]
    assert abs(len(changed) / len(df) - HARSH.dob_typo) < 0.006
    new, old = changed["dob"].dt.strftime("%d%m%Y"), changed["true_date_of_birth"].dt.strftime("%d%m%Y")
    assert all(sum(x != y for x, y in zip(a, b, strict=True)) == 1 for a, b in zip(new, old, strict=True))
    assert (changed["dob"] < night).all()
    assert (changed["dob"] >= night - pd.Timedelta(days=round(25 * 365.25) + 1)).all()
    part = pd.Series(
        np.select([new.str[:2] != old.str[:2], new.str[2:4] != old.str[2:4]], ["day", "month"], "year"),
    ).value_counts(normalize=True)
    assert set(part.index) == {"day", "month", "year"} and (part > 0.2).all()


def test_dob_swaps(test_registry) -> None:
    df = _rows(test_registry, dob_swap=HARSH.dob_swap)
    true = df["true_date_of_birth"]
    eligible = swappable(true.to_numpy().astype("datetime64[D]").astype(np.int64))
    differs = (df["dob"] != true).to_numpy()
    assert not differs[~eligible].any()
    assert abs(differs[eligible].mean() - HARSH.dob_swap) < 0.008
    assert ((df["dob"].dt.day == true.dt.month) & (df["dob"].dt.month == true.dt.day))[differs].all()


def test_postcode_swaps(test_registry) -> None:
    df = _rows(test_registry, postcode_swap=HARSH.postcode_swap)
    changed = df[df["postcode"] != df["true_postcode"]]
    assert abs(len(changed) / len(df) - HARSH.postcode_swap) < 0.006
    for new, old in zip(changed["postcode"], changed["true_postcode"], strict=True):
        assert len(new) == len(old) and new[:-5] == old[:-5]  # the area letters are kept
        assert sorted(new) == sorted(old) or sum(a != b for a, b in zip(new, old, strict=True)) == 1
    shaped = changed["postcode"].str.match(POSTCODE_RE)
    assert 0.8 < shaped.mean() < 0.97, "mostly still a postcode; a few broken (intake rejects them)"


def test_nicknames(test_registry) -> None:
    df = _rows(test_registry, nickname=HARSH.nickname)
    assert abs((df["given_name"] == df["true_nickname"]).mean() - HARSH.nickname) < 0.01


# --------------------------------------------------------------------------- the primitives


@pytest.mark.parametrize("rules", [PHONETIC_RULES, OCR_RULES], ids=["phonetic", "ocr"])
def test_rewrite_rules_on_every_name(rules) -> None:
    import pyarrow as pa

    names = T.GIVEN_NAMES + T.SURNAMES
    u = np.linspace(0, 1, len(names), endpoint=False)
    out, applied = rewrite_strings(pa.array(names, pa.string()), rules, u)
    assert applied.mean() > (0.8 if rules is PHONETIC_RULES else 0.99)
    new = np.array(out.to_pylist())
    old = np.array(names)
    assert (new[applied] != old[applied]).all() and (new[~applied] == old[~applied]).all()
    assert all(NAME.match(n) for n in new)
    assert rewrite_strings(pa.array(["Stephen"]), PHONETIC_RULES, np.zeros(1))[0].to_pylist() != ["Stephen"]


def test_typo_dates_and_postcodes_primitives() -> None:
    days = np.array([np.datetime64(d, "D").astype(np.int64) for d in ("2015-03-05", "2010-12-31", "2026-11-20")])
    latest = int(np.datetime64("2026-11-23", "D").astype(np.int64))
    for u in np.linspace(0, 0.99, 9):
        out, applied = typo_dates(days, np.array([True, True, False]), np.full(3, u), np.full(3, 1 - u), 0, latest)
        assert applied.tolist() == [True, True, False] and out[2] == days[2]
        assert (out[:2] != days[:2]).all() and (out <= latest).all()
    postcodes = np.array(["DH1 4AB", "LS6 2XX", "AB12 3CD", "EC1A 1BB", "bad"])
    for u in (0.1, 0.5, 0.8, 0.95):
        out = swap_postcodes(postcodes, np.full(5, u), np.full(5, 0.5))
        assert out[-1] == "bad" and (out[:4] != postcodes[:4]).all()
        assert all(re.match(POSTCODE_RE, p) for p in out[:4]) == (u < 0.9)


# --------------------------------------------------------------------------- the harsh files


def test_harsh_files_at_their_rates(harsh_run: Run) -> None:
    df = pd.concat([harsh_run.joined(0, s) for s in ("health", "education")], ignore_index=True)
    given, family = df["given_name"], df["family_name"]
    swapped = (given == df["true_family_name"]) & (family == df["true_given_name"])
    assert abs(swapped.mean() - HARSH.transposed) < 0.005
    for field, rate in (("given_name", HARSH.missing_given), ("date_of_birth", HARSH.missing_dob),
                        ("postcode", HARSH.missing_postcode), ("sex", HARSH.missing_sex)):  # fmt: skip
        assert abs((df[field] == "").mean() - rate) < 0.004, field
    # Every name is there and alphabetic, except a given name deliberately left blank.
    assert (family != "").all() and family.str.match(NAME).all()
    assert given[given != ""].str.match(NAME).all()
    # Names changed (typos, phonetic, OCR, nicknames, surnames, transposed): much more than by default.
    assert ((given != df["true_given_name"]) | (family != df["true_family_name"])).mean() > 0.2


def test_harsh_duplicates(harsh_run: Run) -> None:
    truth = harsh_run.truth(0)
    for org in harsh_run.registry.organisations:
        per_child = truth[truth.organisation == org.code].groupby("person_id")["local_id"].nunique()
        assert per_child.max() == 2
        tolerance = 0.004 if len(per_child) > 1_000 else 0.02
        assert abs((per_child == 2).mean() - HARSH.duplicate(org.sector)) < tolerance, org.sector


def test_harsh_truth_untouched(harsh_run: Run, tmp_path, test_registry) -> None:
    """The truth is the same whatever the record-level noise: only duplicates add rows."""
    quiet = replace(HARSH, **{k: 0.0 for k in ("typo", "typo_second", "nickname", "surname_change",
                    "surname_change_record", "dob_swap", "phonetic", "ocr", "transposed", "missing_given",
                    "missing_dob", "missing_postcode", "missing_sex", "dob_typo", "postcode_swap")})  # fmt: skip
    other = _generate(tmp_path, test_registry, quiet, CHILDREN, (0,))[0]
    assert pd.read_parquet(other.truth_path).equals(harsh_run.truth(0))
    assert len(harsh_run.truth(0)) == sum(harsh_run.nights[0].rows.values())


def test_harsh_noise_is_kept_when_resent(harsh_run: Run) -> None:
    """A record re-sent on night 1 carries night 0's noise, unless a correction fixed its typo
    or the household moved: in the files, and for every record built on both nights."""
    pop0, pop1 = harsh_run.populations[0], harsh_run.populations[1]
    resent = 0
    for sector in ("health", "education"):
        before = harsh_run.joined(0, sector).set_index("local_id")
        after = harsh_run.joined(1, sector).set_index("local_id")
        both = after.index.intersection(before.index)
        a, b = after.loc[both], before.loc[both]
        p = a["person_id"].to_numpy()
        unfixed, stayed = ~pop1.fixed[sector][p], pop1.addr_ver[p] == pop0.addr_ver[p]
        assert (a["date_of_birth"] == b["date_of_birth"]).all() and (a["sex"] == b["sex"]).all()
        assert (
            (a.loc[unfixed, ["given_name", "family_name"]] == b.loc[unfixed, ["given_name", "family_name"]]).all().all()
        )
        assert (a.loc[stayed, "postcode"] == b.loc[stayed, "postcode"]).all()
        resent += len(both)

        (org,) = harsh_run.registry.in_sector(sector)
        fields = {c.name: c.field for c in load_contract(org.contract).columns}
        p = pop0.sent[sector]
        rows = [
            build_chunk(pop, org.code, org.contract, current_records(pop, sector, p)).columns for pop in (pop0, pop1)
        ]
        first, second = (
            {fields[n]: col.to_numpy(zero_copy_only=False) for n, col in r.items() if n in fields} for r in rows
        )
        unfixed, stayed = ~pop1.fixed[sector][p], pop1.addr_ver[p] == pop0.addr_ver[p]
        assert unfixed.mean() > 0.99 and stayed.mean() > 0.95
        for field in ("date_of_birth", "sex"):
            assert (first[field] == second[field]).all(), field
        for field in ("given_name", "family_name"):
            assert (first[field] == second[field])[unfixed].all(), field
        assert (first["postcode"] == second["postcode"])[stayed].all()
    assert resent > 5
