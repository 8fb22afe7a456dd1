"""Write crds/tradingstack.yaml from the pydantic model (`make crd`)."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from aitrading.operator.crd_model import crd_manifest

HEADER = "# Generated from operator/crd_model.py — do not edit; run `make crd`.\n"


def rendered() -> str:
    return HEADER + yaml.safe_dump(crd_manifest(), sort_keys=False, width=100)


def main() -> None:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("crds/tradingstack.yaml")
    target.write_text(rendered(), encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
