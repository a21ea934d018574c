"""Rebuild the bundled model (``default_model.json``) from the synthetic generator.

A fresh installation has no trained model until ``childindex train`` runs on its own
index; until then nights use this one, trained the same way on synthetic extracts at the
generator's default noise. Rebuild it after changing the comparisons:

    python -m childindex.simulation.model_builder [--children 20000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from datetime import date
from pathlib import Path

from childindex.linkage.model import BUNDLED_MODEL

NIGHT = date(2026, 11, 24)


def build(children: int, seed: int) -> Path:
    from childindex.index.db import migrate
    from childindex.index.ledger import Ledger
    from childindex.intake.process import run_intake
    from childindex.keyfiles import create_key_file
    from childindex.linkage.training import train_model
    from childindex.settings import load_settings
    from childindex.simulation.synthetic import generate_night

    with tempfile.TemporaryDirectory(prefix="childindex-default-model-") as tmp:
        key = create_key_file(Path(tmp) / "key")
        settings = load_settings(
            data_dir=Path(tmp) / "data",
            pseudonymisation_key_file=key,
            reference_key_file=create_key_file(Path(tmp) / "reference-key"),
        )
        settings.ensure_dirs()
        migrate(settings.index_url)
        generate_night(
            settings.drop_root,
            Path(tmp) / "truth",
            registry=settings.registry,
            children=children,
            seed=seed,
            first_night=NIGHT,
        )
        for org in settings.registry.organisations:
            run_intake(settings, org.code, NIGHT)
        assert Ledger(settings.index_url).staged(), "nothing staged"
        path, _report = train_model(settings, seed=seed)
        payload = json.loads(path.read_text(encoding="utf-8"))
    payload["version"] = 0  # the bundled model; trained ones count from 1
    payload["trained_on"] = f"synthetic: {children} children, seed {seed}, default noise"
    BUNDLED_MODEL.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return BUNDLED_MODEL


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    print(build(args.children, args.seed))


if __name__ == "__main__":
    main()
