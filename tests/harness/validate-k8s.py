"""Strict schema validation of rendered Kubernetes objects, for tests/integration/chart.test.ts.

Reads JSON from stdin: {"objects": [...], "versions": ["1.25.0", ...], "crds": ["path.yaml", ...]}
and prints one JSON line per problem: {"index", "kind", "name", "version", "error"}; exit code 0
either way (the test asserts on the list). Built-in kinds are checked against the strict
Kubernetes schemas of the PyPI package kubernetes-validate (no unknown fields, right types,
required fields) for every version asked; custom resources against the openAPIV3Schema of
their CRD (KEDA, prometheus-operator), made strict the same way: an object schema that lists
properties and does not say x-kubernetes-preserve-unknown-fields accepts no other field.
"""
import json
import sys

import jsonschema
import kubernetes_validate
import yaml


def strict(schema):
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if (
            out.get("type") == "object"
            and "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        # OpenAPI's nullable has no JSON Schema keyword: allow null explicitly.
        if out.get("nullable") and isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


def crd_validators(paths):
    validators = {}
    for path in paths:
        with open(path) as f:
            for crd in yaml.safe_load_all(f):
                if not crd or crd.get("kind") != "CustomResourceDefinition":
                    continue
                group = crd["spec"]["group"]
                kind = crd["spec"]["names"]["kind"]
                for version in crd["spec"]["versions"]:
                    schema = strict(version["schema"]["openAPIV3Schema"])
                    # apiVersion, kind and metadata are checked by the API server itself.
                    schema.setdefault("properties", {})["metadata"] = {"type": "object"}
                    validators[(f"{group}/{version['name']}", kind)] = jsonschema.Draft202012Validator(schema)
    return validators


def main():
    request = json.load(sys.stdin)
    crds = crd_validators(request.get("crds", []))
    for index, obj in enumerate(request["objects"]):
        key = (obj.get("apiVersion"), obj.get("kind"))
        name = (obj.get("metadata") or {}).get("name")
        problems = []
        if key in crds:
            for error in crds[key].iter_errors(obj):
                path = "/".join(str(p) for p in error.absolute_path)
                problems.append(("crd", f"{path}: {error.message}"))
        else:
            for version in request["versions"]:
                try:
                    kubernetes_validate.validate(obj, version, strict=True)
                except kubernetes_validate.ValidationError as e:
                    path = "/".join(str(p) for p in e.absolute_path)
                    problems.append((version, f"{path}: {e.message}"))
                except kubernetes_validate.SchemaNotFoundError:
                    problems.append((version, f"no schema for {key[0]} {key[1]}"))
        for version, error in problems:
            print(json.dumps({"index": index, "kind": key[1], "name": name, "version": version, "error": error}))


if __name__ == "__main__":
    main()
