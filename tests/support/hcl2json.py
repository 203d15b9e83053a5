"""Print the Terraform files of a directory as one JSON document (python-hcl2).

    hcl2json.py DIR  ->  {"file.tf": {...}, ...}

Only parses: what the configuration must say is checked by tests/iac_examples.rs.
"""
import json
import pathlib
import sys

import hcl2

out = {}
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.tf")):
    with open(path) as f:
        out[path.name] = hcl2.load(f)
json.dump(out, sys.stdout)
