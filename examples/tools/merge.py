"""Stand-in for merging (or closing) the feature branch of feature_development.alfred."""

from __future__ import annotations

import sys

action, feature = sys.argv[1], sys.argv[2]
print(f"{action} feature/{feature}")
