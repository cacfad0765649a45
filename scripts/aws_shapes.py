#!/usr/bin/env python3
"""Writes the request shapes of the AWS services Runnel serves, taken from
the installed botocore's service models, as compact JSON the server embeds
(server/src/aws/shapes/<service>.json): for each operation its input shape,
and for each shape only what type checking needs (its type and, for
structures, lists and maps, the shapes of its members).

    python3 scripts/aws_shapes.py    # rewrites every file; commit the result
"""
import gzip
import json
import os
import sys

import botocore

SERVICES = {
    "kinesis": "kinesis/2013-12-02",
    "firehose": "firehose/2015-08-04",
    "kinesisanalyticsv2": "kinesisanalyticsv2/2018-05-23",
    "kinesisvideo": "kinesisvideo/2017-09-30",
    "kinesis-video-media": "kinesis-video-media/2017-09-30",
    "kinesis-video-archived-media": "kinesis-video-archived-media/2017-09-30",
}


def load(path):
    base = os.path.join(os.path.dirname(botocore.__file__), "data", path, "service-2.json")
    if os.path.exists(base):
        with open(base) as f:
            return json.load(f)
    with gzip.open(base + ".gz") as f:
        return json.load(f)


def compact(model):
    shapes = model["shapes"]
    wanted, out = [], {}
    operations = {}
    for name, op in sorted(model["operations"].items()):
        if "input" in op:
            operations[name] = op["input"]["shape"]
            wanted.append(op["input"]["shape"])
    while wanted:
        name = wanted.pop()
        if name in out:
            continue
        shape = shapes[name]
        kind = shape["type"]
        entry = {"type": kind}
        if kind == "structure":
            entry["members"] = {m: s["shape"] for m, s in shape.get("members", {}).items()}
            wanted.extend(entry["members"].values())
        elif kind == "list":
            entry["member"] = shape["member"]["shape"]
            wanted.append(entry["member"])
        elif kind == "map":
            entry["key"] = shape["key"]["shape"]
            entry["value"] = shape["value"]["shape"]
            wanted.extend([entry["key"], entry["value"]])
        out[name] = entry
    return {
        "botocore": botocore.__version__,
        "operations": operations,
        "shapes": dict(sorted(out.items())),
    }


def main():
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "server", "src", "aws", "shapes")
    for service, path in SERVICES.items():
        with open(os.path.join(here, service + ".json"), "w") as f:
            json.dump(compact(load(path)), f, separators=(",", ":"), sort_keys=False)
            f.write("\n")
        print(f"wrote {service}.json", file=sys.stderr)


if __name__ == "__main__":
    main()
