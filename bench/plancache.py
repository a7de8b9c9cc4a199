"""The plan cache benchmark: what storing and reading one entry costs, in process.

    python bench/plancache.py FILE [FILE...] [--runs 5]

Each FILE is compiled once (from the current directory: write inputs with
``python bench/compiler.py --sizes 2000 --runs 1 --keep DIR``), then, --runs times with the
collector off, the median CPU time of:

- store: the entry's body made (``_entry_body``: encode, JSON) and written (``_write_entry``:
  checksum, temporary file, rename, prune), as a run that compiled pays after its compile;
- read: the entry read back whole (``_read_entry``: checksum, JSON, the files hashed again,
  decode), as every cached run pays instead of compiling;
- decode: of that, :func:`~alfred_dsl.compiler._plancache.decode` of the plan alone.

Run it under another checkout's interpreter or ``PYTHONPATH`` to compare two trees.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import tempfile
import time
from pathlib import Path


def measure(path: str, runs: int) -> str:
    from alfred_dsl.compiler import _plancache
    from alfred_dsl.compiler._pipeline import compile_loaded
    from alfred_dsl.compiler.load import load

    workspace, loaded = load(path)
    plan, diagnostics = compile_loaded(workspace, loaded, None, {})
    assert plan is not None and workspace is not None, f"{path} does not compile"
    sources = [document.source for document in workspace.documents]
    material = _plancache._key_material(path, None, {})
    assert material is not None
    store, read, decode = [], [], []
    gc.disable()
    try:
        for _ in range(runs):
            with tempfile.TemporaryDirectory() as folder:
                cache = Path(folder) / "cache"
                entry = cache / "bench.plan"
                started = time.process_time()
                body = _plancache._entry_body(material, sources, plan, diagnostics)
                assert body is not None and _plancache._write_entry(cache, entry, body)
                store.append(time.process_time() - started)
                started = time.process_time()
                found = _plancache._read_entry(entry, material)
                read.append(time.process_time() - started)
                assert found is not None and found[0] == plan
                content = json.loads(body)
                started = time.process_time()
                _plancache.decode(content["plan"], sources)
                decode.append(time.process_time() - started)
                gc.collect()
    finally:
        gc.enable()
    ms = {name: statistics.median(values) * 1000 for name, values in
          (("store", store), ("read", read), ("decode", decode))}
    return (f"{path}: {len(plan.stages)} stages, entry {len(body):,} bytes: "
            + ", ".join(f"{name} {value:.1f} ms" for name, value in ms.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", help=".alfred files to compile and cache")
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (median)")
    arguments = parser.parse_args()
    for path in arguments.files:
        print(measure(path, arguments.runs))


if __name__ == "__main__":
    main()
