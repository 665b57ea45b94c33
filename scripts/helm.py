#!/usr/bin/env python3
"""`helm lint` and `helm template` without a helm binary.

helm-python-sdk (PyPI, pinned in deploy/requirements.txt) carries Helm's Go SDK compiled into a
shared library (libhelm_c, inside the wheel) and calls it through ctypes: the lint rules and the
template engine are Helm's own, and nothing is downloaded at run time.

    helm.py lint CHART [--strict] [-f VALUES.yaml]... [--set KEY=VALUE]...
    helm.py template CHART [--name NAME] [--namespace NS] [-f VALUES.yaml]... [--set KEY=VALUE]...

`template` prints the rendered manifests like `helm template` (each after `# Source: PATH`,
NOTES.txt left out); `lint` prints the findings like `helm lint` and exits 1 on an error (or on
a warning with --strict).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import helm_python as helm

SEVERITY = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Deep merge, `over` wins (as repeated -f and --set do)."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def values(args: argparse.Namespace) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for path in args.values:
        merged = merge(merged, helm.values_from_yaml(Path(path).read_text()))
    for expression in args.set:
        merged = merge(merged, helm.parse_set_string(expression))
    return merged


def lint(args: argparse.Namespace) -> int:
    report = helm.lint(args.chart, values(args) or None, strict=args.strict)
    failed = bool(report.get("errors"))
    for message in report.get("messages") or []:
        severity = int(message.get("severity", 0))
        print(f"[{SEVERITY.get(severity, severity)}] {message.get('path')}: {message.get('error')}")
        if severity >= 3 or (args.strict and severity == 2):
            failed = True
    for error in report.get("errors") or []:
        print(f"Error: {error}")
    linted = report.get("total_charts_linted", 0)
    print(f"==> Linting {args.chart}")
    print(f"{linted} chart(s) linted, {1 if failed else 0} chart(s) failed")
    return 1 if failed or not linted else 0


def template(args: argparse.Namespace) -> int:
    with helm.Chart.load(args.chart) as chart:
        manifests = chart.render(
            values(args), name=args.name, namespace=args.namespace, is_install=True
        )
    for path in sorted(manifests):
        text = manifests[path]
        if path.endswith("NOTES.txt") or not text.strip():
            continue
        sys.stdout.write(f"---\n# Source: {path}\n{text.rstrip()}\n")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("lint", "template"):
        p = sub.add_parser(name)
        p.add_argument("chart")
        p.add_argument("-f", "--values", action="append", default=[], help="a values file")
        p.add_argument("--set", action="append", default=[], help="KEY=VALUE[,KEY=VALUE]")
        if name == "lint":
            p.add_argument("--strict", action="store_true", help="fail on warnings too")
        else:
            p.add_argument("--name", default="release-name", help="release name")
            p.add_argument("--namespace", default="default", help="release namespace")
    args = parser.parse_args()
    try:
        return lint(args) if args.command == "lint" else template(args)
    except helm.HelmError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
