"""One typed settings object for childindex.

Resolution, highest first: ``CHILDINDEX_*`` environment variables (nested values with a
double underscore, e.g. ``CHILDINDEX_RETENTION__ARCHIVE_DAYS``), then a TOML file (named by
``CHILDINDEX_CONFIG_FILE``, else ``childindex.toml`` in the working directory if there is one),
then the defaults below. The pseudonymisation key has no default: it comes from
``CHILDINDEX_PSEUDONYMISATION_KEY`` or from a file named by
``CHILDINDEX_PSEUDONYMISATION_KEY_FILE`` (which must not be readable by others).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from childindex.errors import SettingsError
from childindex.keyfiles import check_key_strength, read_key_file

if TYPE_CHECKING:
    from childindex.organisations.registry import Registry

log = logging.getLogger(__name__)

ENV_PREFIX = "CHILDINDEX_"
CONFIG_FILE_NAME = "childindex.toml"  # read in the working directory when CHILDINDEX_CONFIG_FILE is unset


class ValidationPolicy(BaseModel):
    """When a file is rejected as a whole rather than row by row."""

    model_config = ConfigDict(extra="forbid")  # a misspelt or retired setting is an error, not ignored

    max_rejected_share: float = Field(
        0.2,
        ge=0,
        le=1,
        description="Quarantine a file whose rejected rows, with the rows kept with a value set aside, exceed "
        "this share of its rows.",
    )
    row_count_factor: float = Field(
        3.0,
        gt=1,
        description="Quarantine a file with more than FACTOR times, or under 1/FACTOR of, the median rows "
        "of the organisation's recent accepted files ...",
    )
    row_count_slack: int = Field(
        50,
        ge=0,
        description="... and more than this many rows away from that median: a small organisation's nightly "
        "deltas (3 rows, then 11) are noise, not a broken export.",
    )
    row_count_history: int = Field(
        5, ge=1, description="How many recent accepted files the row-count band is computed from."
    )
    row_count_min_history: int = Field(
        3, ge=1, description="The row-count band applies once an organisation has this many accepted files."
    )
    max_inflated_bytes: int = Field(
        16 * 1024**3,
        ge=1024,
        description="Quarantine a compressed (.gz) delivery whose content inflates past this many bytes, before "
        "anything is parsed or written (a small file can inflate to fill the disk).",
    )
    max_days_ahead: int = Field(
        2,
        ge=0,
        description="Quarantine a file whose name gives a night more than this many days after the night of the "
        "run that receives it (a name cannot carry a file past its retention).",
    )


# The registry the repository ships (configuration, not code): the demo's organisations.
REGISTRY_FILE = Path(__file__).resolve().parents[2] / "config" / "organisations.yaml"

# The retention rules and their default periods (childindex.retention.policy reads the rules
# from here, so the file is read once per process, and only when first needed).
RETENTION_POLICY_FILE = Path(__file__).parent / "retention" / "policy.yaml"


@cache
def retention_policy() -> tuple[dict[str, Any], ...]:
    """The rules of the retention policy file, as written there."""
    import yaml

    return tuple(yaml.safe_load(RETENTION_POLICY_FILE.read_text(encoding="utf-8"))["rules"])


def default_period(setting: str) -> int:
    """The default period (days) of the rule whose period ``setting`` holds."""
    return next(int(r["period_days"]) for r in retention_policy() if r.get("setting") == setting)


def _period(setting: str, minimum: int, description: str) -> Any:
    """A retention period field whose default is the policy file's."""
    return Field(default_factory=lambda: default_period(setting), ge=minimum, description=description)


class RetentionSettings(BaseModel):
    """How long each kind of data is kept (days). Defaults and purposes: retention/policy.yaml."""

    model_config = ConfigDict(extra="forbid")

    involvement_ended_days: int = _period(
        "involvement_ended_days", 0, "Delete an involvement this many days after it ended."
    )
    record_unseen_days: int = _period(
        "record_unseen_days", 1, "Delete a source record no organisation has sent for this many days."
    )
    over_age_days: int = _period(
        "over_age_days", 1, "Delete a child (and all linked to them) older than this, in days."
    )
    review_resolved_days: int = _period("review_resolved_days", 0, "Delete a decided review item after this many days.")
    archive_days: int = _period("archive_days", 0, "Delete loaded raw extracts from the archive after this many days.")
    staging_days: int = _period("staging_days", 0, "Delete staging Parquet files after this many days.")
    quarantine_days: int = _period("quarantine_days", 0, "Delete quarantined files after this many days.")
    receipts_days: int = _period(
        "receipts_days", 0, "Delete receipts from organisations' outboxes after this many days."
    )
    notices_days: int = _period(
        "notices_days",
        0,
        "Delete notice files from organisations' outboxes, and their ledger rows, after this many days.",
    )
    drop_unfinished_days: int = _period(
        "drop_unfinished_days",
        1,
        "Delete a file whose upload never completed (no completion marker, or still .part) from a drop "
        "folder this many days after it last changed.",
    )
    airflow_metadata_days: int = _period(
        "airflow_metadata_days", 1, "Clean Airflow's metadata older than this many days."
    )
    reports_days: int = _period(
        "reports_days",
        0,
        "Delete night summaries, deletion certificates, and the file ledger, night metrics and "
        "deletion log rows after this many days.",
    )

    postgres_vacuum: Literal["full", "plain"] = Field(
        "full",
        description="After deleting, PostgreSQL tables are vacuumed: 'full' rewrites them so deleted rows leave "
        "no bytes in the table's files (an exclusive lock: about 2 s per million rows here); 'plain' only marks "
        "the space free, and the bytes stay until reused.",
    )


class LinkageSettings(BaseModel):
    """How sure linkage must be before it joins records, and where its model lives."""

    model_config = ConfigDict(extra="forbid")

    match_threshold: float = Field(
        0.95, gt=0, lt=1, description="Link two records when the model's match probability is at least this."
    )
    review_threshold: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="Between this and MATCH_THRESHOLD, a pair goes to the clerical review queue instead.",
    )
    model_dir: Path | None = Field(
        None, description="Trained models, one versioned JSON file each (default DATA_DIR/models)."
    )
    duckdb_memory_limit: str = Field(
        "4GB",
        pattern=r"^[0-9]+(\.[0-9]+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$",
        description="Memory DuckDB may use for linkage and training before it spills to the work folder.",
    )
    spill_budget: str = Field(
        "50%",
        pattern=r"^([0-9]+(\.[0-9]+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)|[1-9][0-9]?(\.[0-9]+)?%)$",
        description="Disk linkage and training may spill to in the work folder: a size, or a share of the space "
        "free there when the run starts. Past it the night fails with one line, nothing published.",
    )
    max_block_comparisons: int = Field(
        50_000_000,
        ge=1,
        description="Comparisons one block of a blocking rule may make (tonight's records with each other and "
        "with the index's); tonight's records in a larger block are held back and their senders told.",
    )
    training_max_pairs: int = Field(
        10_000_000, ge=10_000, description="Random pairs sampled to estimate u when training."
    )

    @model_validator(mode="after")
    def _ordered(self) -> LinkageSettings:
        if self.review_threshold > self.match_threshold:
            raise ValueError("review_threshold must not be above match_threshold")
        return self


class NoticeSettings(BaseModel):
    """Who is told of a child's other involvements, and what of a shielded one."""

    model_config = ConfigDict(extra="forbid")

    lookback_days: int = Field(
        365,
        ge=0,
        description="An involvement that ended more than this many days ago is neither announced nor told "
        "(CP-IS looks back 12 months).",
    )
    sensitive: Literal["announce", "withhold"] = Field(
        "announce",
        description="A shielded involvement: 'announce' says only that a sensitive service is involved and its "
        "contact route; 'withhold' tells no one of it (and it is told nothing).",
    )


# Folders under DATA_DIR unless set on their own.
_FOLDERS = {
    "drop_root": "drop",
    "quarantine_dir": "quarantine",
    "archive_dir": "archive",
    "outbox_root": "outbox",
    "staging_dir": "staging",
    "reports_dir": "reports",
}


class Settings(BaseSettings):
    """Everything childindex needs to know about where it runs."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    data_dir: Path = Field(Path("childindex-data"), description="Root of every folder below unless set on its own.")
    organisations_file: Path = Field(
        REGISTRY_FILE,
        description="The organisations registry: who sends which extract, from which area, to which folders.",
    )
    drop_root: Path = Field(
        description="Organisations' drop folders, DROP_ROOT/<code> unless the registry says otherwise "
        "(default DATA_DIR/drop)."
    )
    quarantine_dir: Path = Field(description="Rejected files, kept byte for byte (default DATA_DIR/quarantine).")
    archive_dir: Path = Field(description="Loaded raw extracts (default DATA_DIR/archive).")
    outbox_root: Path = Field(
        description="Receipts, OUTBOX_ROOT/<code> per organisation unless the registry says otherwise "
        "(default DATA_DIR/outbox)."
    )
    staging_dir: Path = Field(description="Standardised Parquet staging files (default DATA_DIR/staging).")
    reports_dir: Path = Field(description="Night summaries and deletion certificates (default DATA_DIR/reports).")
    index_url: str = Field(description="SQLAlchemy URL of the index (default a SQLite file DATA_DIR/index.sqlite).")
    pseudonymisation_key: SecretStr | None = Field(
        None, description="Key for the keyed HMAC of identifiers (at least 32 bytes). Never commit it."
    )
    pseudonymisation_key_file: Path | None = Field(None, description="File holding the key instead (mode 0600).")
    reference_key: SecretStr | None = Field(
        None,
        description="Key that encrypts each organisation's local ids so a notice can name its own record "
        "(at least 32 bytes, not the pseudonymisation key). Never commit it.",
    )
    reference_key_file: Path | None = Field(None, description="File holding the reference key instead (mode 0600).")
    ground_truth_dir: Path | None = Field(
        None, description="Synthetic ground truth, for accuracy figures in demos and tests only."
    )
    # Read when Airflow parses the DAGs (childindex.orchestration.defaults): they shape tasks.
    task_retries: int = Field(
        2, ge=0, description="Retries of every task after a transient error (exponential backoff); read at DAG parse."
    )
    intake_parallelism: int = Field(
        4, ge=1, description="Files one intake run checks at once (mapped tasks in flight); read at DAG parse."
    )
    marker_wait_hours: float = Field(
        6,
        gt=0,
        description="How long a file in a drop folder may wait for its completion marker (or its rename from "
        ".part) before intake, the night summary and the report call it stuck rather than still arriving.",
    )
    retention_queue: str = Field(
        "default", description="Celery queue of the retention task (workers with the retention role); DAG parse."
    )
    linkage_pool: str = Field(
        "default_pool", description="Airflow pool of the linkage task (one slot in production); read at DAG parse."
    )
    failure_webhook_conn: str | None = Field(
        None, description="Airflow Connection whose URL is told when a task fails (off when unset); DAG parse."
    )
    lock_wait_seconds: int = Field(
        1800,
        ge=0,
        description="How long a second run of an organisation's intake, of linkage or of notices waits for the "
        "first to finish before it gives up with one line (and Airflow retries it).",
    )
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    validation: ValidationPolicy = Field(default_factory=ValidationPolicy)
    linkage: LinkageSettings = Field(default_factory=LinkageSettings)
    notices: NoticeSettings = Field(default_factory=NoticeSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        file = config_file()
        if file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=file))
        return tuple(sources)

    @model_validator(mode="before")
    @classmethod
    def _derive_paths(cls, data: Any) -> Any:
        """Folders and the index default to places under DATA_DIR, made absolute so that
        Airflow workers in another working directory agree on paths."""
        if not isinstance(data, dict):
            return data
        retired = sorted(n for n in os.environ if n.startswith(f"{ENV_PREFIX}DROP_FOLDERS"))
        if retired:
            raise ValueError(
                f"{', '.join(retired)}: per-agency drop folders are gone; set the organisation's "
                "drop_folder in the organisations registry (CHILDINDEX_ORGANISATIONS_FILE)"
            )
        data = dict(data)
        base = Path(data.get("data_dir") or cls.model_fields["data_dir"].default).expanduser().absolute()
        data["data_dir"] = base
        for name, folder in _FOLDERS.items():
            if data.get(name) is None:
                data[name] = base / folder
        if not data.get("index_url"):
            data["index_url"] = f"sqlite:///{base / 'index.sqlite'}"
        return data

    @model_validator(mode="after")
    def _check(self) -> Settings:
        self.organisations_file = self.organisations_file.expanduser().absolute()
        if self.linkage.model_dir is None:
            self.linkage.model_dir = self.data_dir / "models"
        return self

    @property
    def registry(self) -> Registry:
        """The organisations registry (read once per version of the file; RegistryError when broken)."""
        from childindex.organisations.registry import load_registry

        return load_registry(self.organisations_file)

    def drop_folder(self, organisation: str) -> Path:
        return self.registry.drop_folder(organisation, self.drop_root)

    def outbox(self, organisation: str) -> Path:
        return self.registry.outbox(organisation, self.outbox_root)

    def max_rejected_share(self, organisation: str) -> float:
        own = self.registry.get(organisation).max_rejected_share
        return self.validation.max_rejected_share if own is None else own

    @property
    def work_dir(self) -> Path:
        """Scratch space for DuckDB and temporary files; emptied by retention."""
        return self.data_dir / "work"

    @cached_property
    def key(self) -> bytes:
        """The pseudonymisation key, as bytes. Raises SettingsError when absent or weak."""
        return _resolve_key(self)

    @cached_property
    def reference_key_bytes(self) -> bytes:
        """The reference key (staging/reference.py), as bytes. SettingsError when absent, weak,
        or the pseudonymisation key itself: one leaked key must not open both."""
        key = _resolve_key(self, "reference")
        if key == self.key:
            raise SettingsError(
                f"{ENV_PREFIX}REFERENCE_KEY: the reference key must differ from the pseudonymisation key "
                "(docs/notices.md); 'childindex init-key FILE' creates one"
            )
        return key

    def ensure_dirs(self) -> None:
        """Create every folder, including each organisation's drop folder and outbox."""
        folders = [
            self.data_dir,
            self.drop_root,
            self.quarantine_dir,
            self.archive_dir,
            self.outbox_root,
            self.staging_dir,
            self.reports_dir,
            self.work_dir,
        ]
        codes = [o.code for o in self.registry.organisations]
        folders += [self.drop_folder(c) for c in codes] + [self.outbox(c) for c in codes]
        for path in folders:
            private_dir(path)


def private_dir(path: Path) -> Path:
    """Create ``path`` and any missing parent with mode 0750 (children's data lives below:
    no access for other users of the machine); an existing folder is left as it is."""
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            folder.mkdir()
        except FileExistsError:  # another worker made it meanwhile
            continue
        folder.chmod(0o750)
    return path


def _resolve_key(settings: Settings, name: Literal["pseudonymisation", "reference"] = "pseudonymisation") -> bytes:
    env_key = f"{ENV_PREFIX}{name.upper()}_KEY"
    env_file = f"{ENV_PREFIX}{name.upper()}_KEY_FILE"
    value: SecretStr | None = getattr(settings, f"{name}_key")
    file: Path | None = getattr(settings, f"{name}_key_file")
    if value is not None:
        key = value.get_secret_value().encode()
        origin = env_key
    elif file is not None:
        origin = f"{env_file} ({file})"
        key = read_key_file(file, origin)
    else:
        raise SettingsError(
            f"{name} key missing: set {env_key}, or {env_file} to a file of mode 0600 "
            f"(looked in the environment and in {config_file() or 'no configuration file'}); "
            "'childindex init-key FILE' creates one"
        )
    check_key_strength(key, origin)
    return key


def _describe(errors: list[ErrorDetails]) -> str:
    parts = []
    for err in errors:
        loc = [str(p) for p in err["loc"]]
        env_name = ENV_PREFIX + "__".join(loc).upper()
        parts.append(f"{env_name}: {err['msg']}")
    return "invalid settings: " + "; ".join(parts)


# CHILDINDEX_* variables that are not settings but are read elsewhere: the configuration
# file's path, the database roles' passwords (sql/, docker/) and the tests' PostgreSQL.
NOT_SETTINGS = frozenset(
    {"CONFIG_FILE", "OWNER_PASSWORD", "LOADER_PASSWORD", "READER_PASSWORD", "RETENTION_PASSWORD", "TEST_PG_URL"}
)
_warned: set[str] = set()


def setting_variables() -> list[str]:
    """Every environment variable that sets something: ``CHILDINDEX_<FIELD>``, and for a
    group of settings (retention, validation...) ``CHILDINDEX_<GROUP>__<FIELD>`` too."""
    names = []
    for name, field in Settings.model_fields.items():
        names.append(f"{ENV_PREFIX}{name.upper()}")
        group = field.annotation
        if isinstance(group, type) and issubclass(group, BaseModel):
            names += [f"{ENV_PREFIX}{name.upper()}__{sub.upper()}" for sub in group.model_fields]
    return names


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """One line per ``CHILDINDEX_*`` variable that no setting reads (a misspelt one is
    otherwise ignored in silence), with the nearest setting's name. Names only, never values."""
    import difflib

    known = setting_variables()
    known_set = set(known) | {ENV_PREFIX + n for n in NOT_SETTINGS}
    lines = []
    for name in sorted(os.environ if environ is None else environ):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper in known_set or upper.startswith(f"{ENV_PREFIX}DROP_FOLDERS"):
            continue
        near = difflib.get_close_matches(upper, known, n=1, cutoff=0.75)
        hint = f"; did you mean {near[0]}?" if near else " (the README lists every setting)"
        lines.append(f"{name} is not a childindex setting and is ignored{hint}")
    return lines


_no_config_file: ContextVar[bool] = ContextVar("_no_config_file", default=False)


def config_file() -> Path | None:
    """The TOML file the settings read: the one ``CHILDINDEX_CONFIG_FILE`` names, else
    ``childindex.toml`` in the working directory when there is one; none when the variable
    is set but empty (or inside :func:`without_config_file`)."""
    if _no_config_file.get():
        return None
    named = os.environ.get(f"{ENV_PREFIX}CONFIG_FILE")
    if named is not None:
        return Path(named) if named else None
    found = Path(CONFIG_FILE_NAME).absolute()
    return found if found.is_file() else None


@contextmanager
def without_config_file() -> Iterator[None]:
    """Settings built inside read no configuration file: the environment and defaults only
    (the demo, which rewrites its own file, must not inherit a previous demo's folders)."""
    token = _no_config_file.set(True)
    try:
        yield
    finally:
        _no_config_file.reset(token)


def configuration_sources() -> str:
    """Where the settings come from, as they do: which variables, which file, else defaults."""
    known = set(setting_variables())
    variables = [n for n in os.environ if n.upper() in known]
    file = config_file()
    found = [f"{len(variables)} CHILDINDEX_* variable(s)" if variables else "no CHILDINDEX_* setting variable"]
    named = os.environ.get(f"{ENV_PREFIX}CONFIG_FILE")
    if file is not None:
        found.append(f"configuration file {file}" + ("" if named else " (found in the working directory)"))
    else:
        why = "is set empty" if named == "" else f"unset, no {CONFIG_FILE_NAME} in the working directory"
        found.append(f"no configuration file (CHILDINDEX_CONFIG_FILE {why})")
    return "loaded from " + " and ".join(found) + "; every other setting is its default"


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, turning validation errors into one readable SettingsError.
    A ``CHILDINDEX_*`` variable no setting reads is logged (once a process) with the nearest
    setting's name."""
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        # include_input=False: a setting's value could be a secret.
        raise SettingsError(_describe(exc.errors(include_input=False))) from None
    for line in unknown_variables():
        if line not in _warned:
            _warned.add(line)
            log.warning("%s", line)
    return settings


def environment_for(values: dict[str, Any]) -> dict[str, str]:
    """``CHILDINDEX_*`` variables that give another process these settings (top-level
    fields by name, e.g. the demo's data directory for its Airflow processes)."""
    unknown = sorted(set(values) - set(Settings.model_fields))
    if unknown:
        raise SettingsError(f"not settings: {', '.join(unknown)}")
    return {f"{ENV_PREFIX}{name.upper()}": str(value) for name, value in values.items() if value is not None}
