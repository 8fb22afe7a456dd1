"""Write the generated manifests from their Python sources (`make crd`).

- crds/tradingstack.yaml and the chart's copy, from the pydantic model;
- the chart's operator RBAC rules, from operator/rbac.py.
Tests fail when any of them differs from what this writes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from aitrading.operator.crd_model import crd_manifest

HEADER = "# Generated from operator/crd_model.py — do not edit; run `make crd`.\n"


def rendered() -> str:
    return HEADER + yaml.safe_dump(crd_manifest(), sort_keys=False, width=100)


def rbac_rules() -> str:
    from aitrading.operator.rbac import RULES

    return "# Generated from operator/rbac.py — do not edit; run `make crd`.\n" + yaml.safe_dump(
        RULES, sort_keys=False, width=100
    )


def outputs(root: Path) -> dict[Path, str]:
    return {
        root / "crds" / "tradingstack.yaml": rendered(),
        root / "charts" / "aitrading" / "crds" / "tradingstack.yaml": rendered(),
        root / "charts" / "aitrading" / "files" / "operator-rbac-rules.yaml": rbac_rules(),
    }


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path()
    for target, text in outputs(root).items():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        print(f"wrote {target}")


if __name__ == "__main__":
    main()
