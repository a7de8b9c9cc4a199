"""Stand-in for one shard of the test suite of feature_development.alfred."""

from __future__ import annotations

import argparse

parser = argparse.ArgumentParser()
parser.add_argument("--coverage", type=int, required=True)
parser.add_argument("--shard", type=int, required=True)
parser.add_argument("--shards", type=int, required=True)
args = parser.parse_args()
print(f"shard {args.shard + 1}/{args.shards}: all tests passed, coverage >= {args.coverage}%")
