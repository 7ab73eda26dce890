"""Measure which operator versions an interpreter loads, by loading probe models (not by reading its source).

The TFLite converter writes each operator with a version (FULLY_CONNECTED 12, for one); an interpreter refuses
a model holding an operator version it does not register. This measures, for every operator edgernn's models
use, the highest version an interpreter accepts: probes are real exported models with that operator's version
rewritten (flatbuffer object API), loaded one by one. The result for tflite-runtime 2.14 is the table in
``edgernn/exporting/compat.py``.

    python benchmarks/op_versions.py make BUNDLE... --out probes      # host (needs ai-edge-litert's schema)
    /path/to/tflite-venv/bin/python benchmarks/op_versions.py probe probes   # where the interpreter runs
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

MAX_VERSION = 16


def _schema():
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def _name(schema, operator_code) -> str:
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    return names[max(operator_code.builtinCode, operator_code.deprecatedBuiltinCode)]


def make(bundles: list[Path], out: Path) -> None:
    """For each operator of the bundles' .tflite files: one probe per version 1..MAX_VERSION."""
    import flatbuffers

    schema = _schema()
    out.mkdir(parents=True, exist_ok=True)
    seen, index = set(), []
    for model_file in sorted(f for b in bundles for f in Path(b).glob("*.tflite")):
        content = model_file.read_bytes()
        for op in {_name(schema, c) for c in schema.ModelT.InitFromPackedBuf(content, 0).operatorCodes}:
            if op in seen:
                continue
            seen.add(op)
            for version in range(1, MAX_VERSION + 1):
                model = schema.ModelT.InitFromPackedBuf(content, 0)
                for code in model.operatorCodes:  # only the probed operator's version can make it fail
                    code.version = version if _name(schema, code) == op else 1
                builder = flatbuffers.Builder(0)
                builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
                probe = out / f"{op}-{version}.tflite"
                probe.write_bytes(bytes(builder.Output()))
                index.append({"op": op, "version": version, "file": probe.name, "source": str(model_file)})
    (out / "index.json").write_text(json.dumps(index, indent=1))
    print(f"{len(index)} probes for {len(seen)} operators in {out}")


def probe(directory: Path) -> None:
    """Load every probe; print the highest version of each operator the interpreter resolves."""
    try:
        from tflite_runtime.interpreter import Interpreter
        import tflite_runtime

        who = f"tflite-runtime {tflite_runtime.__version__}"
    except ImportError:
        from ai_edge_litert.interpreter import Interpreter

        who = "ai-edge-litert"
    highest = {}
    for item in json.loads((directory / "index.json").read_text()):
        try:
            Interpreter(model_content=(directory / item["file"]).read_bytes())
        except (ValueError, RuntimeError) as exc:
            if "Didn't find op for builtin opcode" in str(exc):
                continue
            raise
        highest[item["op"]] = max(highest.get(item["op"], 0), item["version"])
    print(json.dumps({"interpreter": who, "highest": dict(sorted(highest.items()))}, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["make", "probe"])
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("probes"))
    args = parser.parse_args()
    if args.mode == "make":
        make(args.paths, args.out)
    else:
        probe(args.paths[0])


if __name__ == "__main__":
    sys.exit(main())
