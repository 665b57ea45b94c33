#!/usr/bin/env bash
# Checks the Helm chart (helm/confab) and the plain manifests (deploy/k8s) without a cluster:
# `helm lint --strict` and `helm template` through helm-python-sdk (Helm's Go SDK, shipped in
# the wheel as a shared library: no helm binary, nothing downloaded; see scripts/helm.py), of
# four value sets: the defaults, an external Redis URL, ServiceMonitor + HPA on, and media in an
# S3 bucket. Every
# rendered object and deploy/k8s/**/*.yaml is validated with `kubernetes-validate --strict`
# against the chart's oldest Kubernetes (1.30) and the newest the validator knows; the one kind
# it has no schema for, the Prometheus Operator's ServiceMonitor (a CRD), is checked by
# scripts/check_rendered.py instead, and any other schema-less kind fails. Then assertions: the
# defaults run three replicas against a Redis StatefulSet, an external Redis renders none, and
# settings that cannot work are refused.
# Needs .venv with deploy/requirements.txt (scripts/test.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
py="${PYTHON:-.venv/bin/python}"
kv="$(dirname "$py")/kubernetes-validate"
chart=helm/confab
kube_versions=(-k 1.30.0 -k 1.37.0)
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT

"$py" -c 'import helm_python as h; print(f"helm-python-sdk {h.__version__}: Helm SDK {h.helm_sdk_version()} in {h.library_path.name}")'
echo "kubernetes-validate $("$kv" --version)"

# The three value sets: name and --set flags.
cases=(
    "defaults|"
    "external-redis|--set externalRedis.url=redis://redis.example.internal:6379/0"
    "monitoring|--set serviceMonitor.enabled=true,autoscaling.enabled=true"
    "s3-media|--set config.media.s3.bucket=chat-media,config.media.s3.endpoint=http://minio:9000,config.media.s3.pathStyle=true,config.media.s3.existingSecret=media-s3"
)
for case in "${cases[@]}"; do
    name="${case%%|*}"
    read -r -a flags <<<"${case#*|}"
    echo "helm lint --strict $chart ${flags[*]}"
    "$py" scripts/helm.py lint --strict "$chart" "${flags[@]}"
    "$py" scripts/helm.py template "$chart" --name confab --namespace chat "${flags[@]}" >"$dir/$name.yaml"
    echo "helm template $chart ${flags[*]}: $(grep -c '^kind:' "$dir/$name.yaml") objects"
done

# Settings the chart must refuse.
refuse() {
    local why="$1"; shift
    if "$py" scripts/helm.py template "$chart" "$@" >/dev/null 2>"$dir/err"; then
        echo "FAIL: helm template $* rendered, but should refuse: $why" >&2
        exit 1
    fi
    echo "refused as expected ($why): $(tail -1 "$dir/err" | sed 's/.*error calling fail: //')"
}
refuse "no Redis at all" --set redis.enabled=false
refuse "grace period shorter than the drain" --set terminationGracePeriodSeconds=20
refuse "unknown appendfsync" --set redis.appendfsync=sometimes

# Schema validation. kubernetes-validate passes a kind it has no schema for with a WARN: only the
# ServiceMonitor (a CRD, checked by check_rendered.py) may do so.
plain=(deploy/k8s/*.yaml deploy/k8s/examples/*.yaml)
status=0
"$kv" --strict "${kube_versions[@]}" "$dir"/*.yaml "${plain[@]}" >"$dir/validate.log" || status=$?
grep -v '^INFO' "$dir/validate.log" || true
unexpected="$(grep -v '^INFO' "$dir/validate.log" \
    | grep -v '^WARN .* kind ServiceMonitor with api version monitoring.coreos.com/v1 ' || true)"
if [ "$status" -ne 0 ] || [ -n "$unexpected" ]; then
    echo "FAIL: kubernetes-validate --strict found problems (above)" >&2
    exit 1
fi
echo "kubernetes-validate --strict ${kube_versions[*]}: $(grep -c '^INFO' "$dir/validate.log") object validations passed" \
    "($(grep -c '^WARN' "$dir/validate.log") ServiceMonitor skips: no schema for the CRD)"

# What the objects must say.
for case in "${cases[@]}"; do
    name="${case%%|*}"
    "$py" scripts/check_rendered.py "$name" "$dir/$name.yaml"
done
"$py" scripts/check_rendered.py plain "${plain[@]}"
