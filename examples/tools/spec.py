"""Stand-in for the spec builder of feature_development.alfred: writes a specification."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--feature", required=True)
feature = parser.parse_args().feature
spec = Path("out") / f"{feature}.spec.md"
spec.parent.mkdir(exist_ok=True)
spec.write_text(f"# {feature}\n\nThe feature, as requested.\n", encoding="utf-8")
with open(os.environ["ALFRED_OUTPUTS"], "a", encoding="utf-8") as outputs:
    outputs.write(f"spec_path={spec}\n")
print(f"wrote {spec}")
