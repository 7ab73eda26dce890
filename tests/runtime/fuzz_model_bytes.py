"""Worker for the model-bytes fuzz test: runs in its own process, so a native crash is seen, not suffered.

    python fuzz_model_bytes.py BUNDLE VARIANT COUNT SEED SCRATCH

Mutates random bytes of the variant's model file, updates the manifest's hash to match (the attacker who
controls the bundle), loads and steps it. Prints a JSON count of outcomes: ``ok``, or the edgernn error type;
anything else is ``OTHER:<type>``.
"""

import hashlib
import json
import random
import shutil
import sys

import numpy as np

from edgernn.runtime import EdgernnError, StreamingPredictor


def main(bundle, variant, count, seed, scratch):
    rng = random.Random(seed)
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(bundle, scratch)
    manifest = json.loads(open(f"{bundle}/manifest.json").read())
    name = manifest["variants"][variant]["file"]
    original = open(f"{bundle}/{name}", "rb").read()
    outcomes = {}
    for _ in range(count):
        data = bytearray(original)
        for _ in range(rng.choice([1, 2, 4, 16, 64])):
            data[rng.randrange(len(data))] = rng.randrange(256)
        open(f"{scratch}/{name}", "wb").write(data)
        manifest["variants"][variant]["sha256"] = hashlib.sha256(data).hexdigest()
        open(f"{scratch}/manifest.json", "w").write(json.dumps(manifest))
        try:
            StreamingPredictor.load(scratch, variant).run(np.sin(np.arange(20) / 5.0))
            kind = "ok"
        except EdgernnError as exc:
            kind = type(exc).__name__
        except Exception as exc:  # noqa: BLE001 - the point is to see anything unclean
            kind = f"OTHER:{type(exc).__name__}:{str(exc)[:100]}"
        outcomes[kind] = outcomes.get(kind, 0) + 1
    print(json.dumps(outcomes))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
