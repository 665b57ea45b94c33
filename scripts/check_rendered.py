#!/usr/bin/env python3
"""Assertions on rendered Kubernetes objects (called by scripts/check-helm.sh).

    check_rendered.py CASE FILE...

CASE is one of:
  defaults        the chart's defaults: three replicas against the bundled Redis StatefulSet
  external-redis  externalRedis.url set: no Redis StatefulSet (nor its Service, Secret, policy)
  monitoring      serviceMonitor.enabled and autoscaling.enabled: a ServiceMonitor that selects
                  the headless Service's admin port, an HPA, no fixed replica count
  s3-media        config.media.s3 set: confab.toml names the bucket, the access key comes from
                  the named Secret
  plain           deploy/k8s: three replicas against the Redis StatefulSet

Every case also checks what holds for any Confab pod (probes, drain, security context, node
id, listen addresses, confab.toml parses) and that references resolve (Service selectors and
target ports, ConfigMaps and Secrets named by the pods).
"""

from __future__ import annotations

import sys
import tomllib
from typing import Any

import yaml

Obj = dict[str, Any]
failures: list[str] = []


def check(condition: bool, message: str) -> None:
    if not condition:
        failures.append(message)


def load(paths: list[str]) -> list[Obj]:
    objects: list[Obj] = []
    for path in paths:
        with open(path) as f:
            objects.extend(doc for doc in yaml.safe_load_all(f) if doc)
    return objects


def of_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objects if o.get("kind") == kind]


def name(obj: Obj) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def env_of(container: Obj) -> dict[str, Obj]:
    return {e["name"]: e for e in container.get("env") or []}


def workloads(objects: list[Obj]) -> list[Obj]:
    return [o for o in objects if o.get("kind") in ("Deployment", "StatefulSet")]


def confab_deployment(objects: list[Obj]) -> Obj:
    deployments = of_kind(objects, "Deployment")
    check(len(deployments) == 1, f"one Deployment expected, found {len(deployments)}")
    return deployments[0]


def check_confab_pod(objects: list[Obj], deployment: Obj) -> None:
    """What every Confab Deployment must have."""
    pod = deployment["spec"]["template"]["spec"]
    container = next(c for c in pod["containers"] if c["name"] == "confab")
    env = env_of(container)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    check({"http", "admin"} <= set(ports), "container ports http and admin")

    node_id = env.get("CONFAB_NODE_ID", {}).get("valueFrom", {}).get("fieldRef", {})
    check(node_id.get("fieldPath") == "metadata.name", "CONFAB_NODE_ID from metadata.name")
    check(
        env.get("CONFAB_LISTEN", {}).get("value") == f"0.0.0.0:{ports.get('http')}",
        "CONFAB_LISTEN on 0.0.0.0 and the http port",
    )
    check(
        env.get("CONFAB_ADMIN_LISTEN", {}).get("value") == f"0.0.0.0:{ports.get('admin')}",
        "CONFAB_ADMIN_LISTEN on 0.0.0.0 and the admin port",
    )
    check("CONFAB_REDIS_URL" in env, "CONFAB_REDIS_URL set (cluster mode)")
    for key in ("ACCOUNT_SID", "AUTH_TOKEN", "API_KEY_SID", "API_KEY_SECRET"):
        check(f"CONFAB_{key}" in env, f"CONFAB_{key} set from a Secret")
    check(pod.get("enableServiceLinks") is False, "enableServiceLinks: false (no CONFAB_*_PORT)")

    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        http = container.get(probe, {}).get("httpGet", {})
        check(
            http.get("path") == path and http.get("port") in ("admin", ports.get("admin")),
            f"{probe} GET {path} on the admin port",
        )

    # The drain: preStop sleep, then SIGTERM and shutdown_timeout_secs, all within the grace.
    sleep = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds")
    check(isinstance(sleep, int) and sleep > 0, "preStop sleep handler")
    config_name = env.get("CONFAB_CONFIG", {}).get("value", "")
    check(config_name.startswith("/"), "CONFAB_CONFIG names the mounted confab.toml")
    toml: Obj = {}
    for cm in of_kind(objects, "ConfigMap"):
        if "confab.toml" in cm.get("data", {}):
            try:
                toml = tomllib.loads(cm["data"]["confab.toml"])
            except tomllib.TOMLDecodeError as exc:
                failures.append(f"{name(cm)}: confab.toml does not parse: {exc}")
    check(bool(toml), "a ConfigMap with confab.toml")
    drain = toml.get("shutdown_timeout_secs", 30)
    grace = pod.get("terminationGracePeriodSeconds", 30)
    check(
        grace > (sleep or 0) + drain,
        f"terminationGracePeriodSeconds {grace} > preStop {sleep} + drain {drain}",
    )
    check(
        toml.get("dev_tokens") == "off" and toml.get("log_format") == "json",
        "dev tokens off, json logs",
    )

    # Security: non-root, read-only root filesystem, no capabilities, seccomp.
    psc, csc = pod.get("securityContext", {}), container.get("securityContext", {})
    check(psc.get("runAsNonRoot") or csc.get("runAsNonRoot"), "runAsNonRoot")
    check(csc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem")
    check(csc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation: false")
    check(csc.get("capabilities", {}).get("drop") == ["ALL"], "capabilities drop ALL")
    seccomp = (csc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
    check(seccomp == "RuntimeDefault", "seccomp RuntimeDefault")
    mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
    check({"/data", "/tmp"} <= mounts, "writable /data and /tmp")
    empty = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
    check(
        {m["name"] for m in container["volumeMounts"] if m["mountPath"] in ("/data", "/tmp")}
        <= empty,
        "/data and /tmp are emptyDirs",
    )
    check(bool(container.get("resources", {}).get("requests")), "resource requests")
    check(bool(pod.get("topologySpreadConstraints")), "topologySpreadConstraints")


def check_references(objects: list[Obj], external_secrets: set[str]) -> None:
    """Selectors, ports and names that must point at something rendered."""
    pods = [(w, w["spec"]["template"]) for w in workloads(objects)]
    for svc in of_kind(objects, "Service"):
        selector = svc["spec"].get("selector") or {}
        targets = [(w, t) for w, t in pods if matches(selector, t["metadata"].get("labels", {}))]
        check(bool(targets), f"{name(svc)} selects no pod")
        for _, template in targets:
            names = {
                p.get("name")
                for c in template["spec"]["containers"]
                for p in c.get("ports", [])
            }
            for port in svc["spec"]["ports"]:
                target = port.get("targetPort", port["port"])
                check(
                    not isinstance(target, str) or target in names,
                    f"{name(svc)} targets port {target!r}, which the pods do not name",
                )
    for w in workloads(objects):
        check(
            matches(w["spec"]["selector"]["matchLabels"], w["spec"]["template"]["metadata"]["labels"]),
            f"{name(w)}: the selector matches its pod template",
        )
        if w["kind"] == "StatefulSet":
            check(
                any(s["metadata"]["name"] == w["spec"]["serviceName"] and s["spec"].get("clusterIP") == "None"
                    for s in of_kind(objects, "Service")),
                f"{name(w)}: its serviceName is a headless Service",
            )
    configmaps = {o["metadata"]["name"] for o in of_kind(objects, "ConfigMap")}
    secrets = {o["metadata"]["name"] for o in of_kind(objects, "Secret")} | external_secrets
    for w in workloads(objects):
        spec = w["spec"]["template"]["spec"]
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                check(volume["configMap"]["name"] in configmaps, f"{name(w)}: ConfigMap {volume['configMap']['name']}")
        for c in spec["containers"]:
            for e in c.get("env") or []:
                ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    check(ref["name"] in secrets, f"{name(w)}: Secret {ref['name']} (for {e['name']})")
    for kind in ("PodDisruptionBudget", "NetworkPolicy"):
        for obj in of_kind(objects, kind):
            selector = (obj["spec"].get("selector") or obj["spec"].get("podSelector"))["matchLabels"]
            check(
                any(matches(selector, t["metadata"]["labels"]) for _, t in pods),
                f"{name(obj)} selects no pod",
            )


def redis_statefulsets(objects: list[Obj]) -> list[Obj]:
    return [
        s for s in of_kind(objects, "StatefulSet")
        if any("redis" in c["image"] for c in s["spec"]["template"]["spec"]["containers"])
    ]


def check_bundled_redis(objects: list[Obj], deployment: Obj) -> None:
    sets = redis_statefulsets(objects)
    check(len(sets) == 1, f"one Redis StatefulSet expected, found {len(sets)}")
    if not sets:
        return
    redis = sets[0]
    check(bool(redis["spec"].get("volumeClaimTemplates")), "Redis has a PVC template")
    conf = "".join(cm["data"].get("redis.conf", "") for cm in of_kind(objects, "ConfigMap"))
    check("appendonly yes" in conf, "Redis runs with appendonly yes")
    check("appendfsync everysec" in conf, "Redis runs with appendfsync everysec")
    check("maxmemory-policy noeviction" in conf, "Redis never evicts")
    container = next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "confab")
    url = env_of(container)["CONFAB_REDIS_URL"].get("value", "")
    redis_services = [
        s["metadata"]["name"] for s in of_kind(objects, "Service")
        if matches(s["spec"].get("selector") or {}, redis["spec"]["template"]["metadata"]["labels"])
        and s["spec"].get("clusterIP") != "None"
    ]
    check(
        any(f"{svc}:6379" in url for svc in redis_services),
        f"CONFAB_REDIS_URL {url!r} points at the Redis Service {redis_services}",
    )


def main() -> int:
    case, paths = sys.argv[1], sys.argv[2:]
    objects = load(paths)
    deployment = confab_deployment(objects)
    check_confab_pod(objects, deployment)
    external = {"confab-credentials"} if case == "plain" else {"media-s3"} if case == "s3-media" else set()
    check_references(objects, external)
    kinds = sorted({o["kind"] for o in objects})

    if case in ("defaults", "external-redis", "monitoring", "plain"):
        configmap = next(o for o in of_kind(objects, "ConfigMap") if "confab.toml" in o.get("data", {}))
        media = tomllib.loads(configmap["data"]["confab.toml"]).get("media", {})
        check(media.get("backend") == "off", "media are off without a bucket")
    if case in ("defaults", "plain"):
        check(deployment["spec"].get("replicas") == 3, "the Deployment runs 3 replicas")
        check_bundled_redis(objects, deployment)
        check(not of_kind(objects, "HorizontalPodAutoscaler"), "no HPA by default")
        check(not of_kind(objects, "ServiceMonitor"), "no ServiceMonitor by default")
        check(len(of_kind(objects, "PodDisruptionBudget")) == 1, "a PodDisruptionBudget")
    if case == "defaults":
        check(len(of_kind(objects, "NetworkPolicy")) == 2, "NetworkPolicies for nodes and Redis")
        headless = [s for s in of_kind(objects, "Service") if s["spec"].get("clusterIP") == "None"]
        check(len(headless) == 2, "headless Services for the nodes and Redis")
    elif case == "external-redis":
        check(not of_kind(objects, "StatefulSet"), "no StatefulSet with an external Redis")
        check(not any("redis" in o["metadata"]["name"] for o in objects), "no Redis objects at all")
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        check(
            env_of(container)["CONFAB_REDIS_URL"].get("value") == "redis://redis.example.internal:6379/0",
            "CONFAB_REDIS_URL is externalRedis.url",
        )
        check(deployment["spec"].get("replicas") == 3, "the Deployment runs 3 replicas")
    elif case == "s3-media":
        configmap = next(o for o in of_kind(objects, "ConfigMap") if "confab.toml" in o.get("data", {}))
        media = tomllib.loads(configmap["data"]["confab.toml"])["media"]
        check(media.get("backend") == "s3", "media.backend is s3")
        check(media["s3"] == {"bucket": "chat-media", "endpoint": "http://minio:9000", "region": "",
                              "prefix": "", "path_style": True}, f"media.s3 {media['s3']}")
        env = env_of(deployment["spec"]["template"]["spec"]["containers"][0])
        for key in ("ACCESS_KEY_ID", "SECRET_ACCESS_KEY"):
            ref = env[f"CONFAB_MEDIA_S3_{key}"].get("valueFrom", {}).get("secretKeyRef", {})
            check(ref.get("name") == "media-s3", f"CONFAB_MEDIA_S3_{key} from the Secret media-s3")
    elif case == "monitoring":
        check("replicas" not in deployment["spec"], "no fixed replicas under an HPA")
        hpas = of_kind(objects, "HorizontalPodAutoscaler")
        check(len(hpas) == 1 and hpas[0]["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"],
              "an HPA scaling the Deployment")
        monitors = of_kind(objects, "ServiceMonitor")
        check(len(monitors) == 1, "a ServiceMonitor")
        for sm in monitors:
            # No schema for this CRD in kubernetes-validate: its essentials are checked here.
            check(sm["apiVersion"] == "monitoring.coreos.com/v1", "ServiceMonitor apiVersion")
            spec = sm["spec"]
            selected = [s for s in of_kind(objects, "Service")
                        if matches(spec["selector"]["matchLabels"], s["metadata"].get("labels", {}))]
            check(len(selected) == 1 and selected[0]["spec"].get("clusterIP") == "None",
                  "the ServiceMonitor selects exactly the headless Service")
            check(spec["namespaceSelector"]["matchNames"] == [sm["metadata"]["namespace"]],
                  "the ServiceMonitor looks in the release namespace")
            for ep in spec["endpoints"]:
                check(set(ep) <= {"port", "path", "scheme", "interval", "scrapeTimeout", "relabelings"},
                      f"ServiceMonitor endpoint fields {sorted(ep)}")
                check(any(ep["port"] == p["name"] for s in selected for p in s["spec"]["ports"]),
                      "the ServiceMonitor scrapes a named port of the Service")
                check(ep["path"] == "/metrics", "the ServiceMonitor scrapes /metrics")
                check({"action": "replace", "targetLabel": "job", "replacement": "confab"} in ep.get("relabelings", []),
                      'the ServiceMonitor sets job="confab" (the alert rules select it)')

    if failures:
        for f in failures:
            print(f"FAIL {case}: {f}")
        return 1
    print(f"{case}: {len(objects)} objects ({', '.join(kinds)}): all assertions hold")
    return 0


if __name__ == "__main__":
    sys.exit(main())
