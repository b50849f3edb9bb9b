"""Structural checks of the deployment artefacts that no schema covers (offline, stdlib + PyYAML).

Run by scripts/validate-deploy and by realio/tests/test_deploy.py. Each check returns a list
of problems; `python deploy/check_deploy.py` prints them and exits 1 if there are any.
"""

import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S_BASE = DEPLOY / "k8s" / "base"

# Variables read by the settings but meaningful to the test run only.
TEST_ONLY = re.compile(r"^TEST_")
ENV_READ = re.compile(r"""\benv(?:\.\w+)?\(\s*["']([A-Z][A-Z0-9_]*)["']""")
ENVIRON_READ = re.compile(r"""os\.environ(?:\.get\(|\[)\s*["']([A-Z][A-Z0-9_]*)["']""")
SECRET_NAMES = re.compile(
    r"SECRET|PASSWORD|TOKEN|_KEY$|_KEY_ID$|CREDENTIALS_JSON"
    r"|DATABASE_URL|REDIS_URL|BROKER_URL|EMAIL_URL|ELASTICSEARCH_URL"  # URLs carry credentials
)

# Series django-prometheus exposes with the project's settings today (checked against /metrics).
DJANGO_METRICS_TODAY = {
    "django_http_requests_total_by_view_transport_method_total",
    "django_http_responses_total_by_status_view_method_total",
    "django_http_requests_latency_seconds_by_view_method_bucket",
    "django_http_requests_latency_including_middlewares_seconds_bucket",
    "django_http_requests_before_middlewares_total",
    "django_http_responses_before_middlewares_total",
    "django_http_requests_total_by_method_total",
    "django_http_requests_total_by_transport_total",
    "django_http_exceptions_total_by_type_total",
    "django_http_exceptions_total_by_view_total",
    "django_http_responses_total_by_status_total",
    # the database backend (django_prometheus.db.backends.postgis)
    "django_db_execute_total",
    "django_db_new_connections_total",
    "django_db_query_duration_seconds_bucket",
    "django_db_errors_total",
    "django_db_new_connection_errors_total",
}
SEVERITIES = {"info", "warning", "critical", "page"}
DURATION = re.compile(r"^\d+[smhd]$")


def realio_metric_names():
    """The series names realio/metrics.py defines (prometheus_client's suffixes included)."""
    text = (ROOT / "realio" / "metrics.py").read_text()
    names = set()
    for kind, name in re.findall(r'\b(Counter|Gauge|Histogram|GaugeMetricFamily|InfoMetricFamily)\(\s*"(realio_\w+)"',
                                 text):
        names |= {"Counter": {f"{name}_total"}, "Gauge": {name}, "GaugeMetricFamily": {name},
                  "Histogram": {f"{name}_bucket", f"{name}_sum", f"{name}_count"},
                  "InfoMetricFamily": {f"{name}_info"}}[kind]
    return names


def metric_problems(where, expr, labels):
    problems = []
    metrics = set(re.findall(r"\b([a-z_][a-z0-9_]*)(?=\s*[{\[])", expr))
    for metric in sorted(m for m in metrics if m.startswith("realio_")):
        if metric not in realio_metric_names():
            problems.append(f"{where}: {metric} is not defined in realio/metrics.py")
    for metric in (m for m in metrics if m.startswith("django_")):
        if metric not in DJANGO_METRICS_TODAY and "requires" not in labels:
            problems.append(f"{where}: {metric} is not exposed today; add a `requires` label")
    return problems


def load_all(path):
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def settings_env_vars():
    names = set()
    for path in sorted((ROOT / "realio" / "settings").glob("*.py")):
        if path.name == "test.py":
            continue
        text = path.read_text()
        names |= set(ENV_READ.findall(text)) | set(ENVIRON_READ.findall(text))
        required = re.search(r"REQUIRED\s*=\s*\(([^)]*)\)", text)
        if required:
            names |= set(re.findall(r'"([A-Z_]+)"', required.group(1)))
    return {name for name in names if not TEST_ONLY.match(name)}


def env_example_vars():
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", (DEPLOY / "env.example").read_text(), re.M))


def k8s_env_keys():
    config = load_all(K8S_BASE / "configmap.yaml")[0]["data"]
    secret = load_all(K8S_BASE / "secret.example.yaml")[0]["stringData"]
    return set(config), set(secret)


def check_env():
    problems = []
    wanted = settings_env_vars()
    example = env_example_vars()
    config, secret = k8s_env_keys()
    for name in sorted(wanted - example):
        problems.append(f"deploy/env.example: {name} (read by realio/settings) is missing")
    for name in sorted(wanted - config - secret):
        problems.append(f"deploy/k8s/base: {name} is in neither configmap.yaml nor secret.example.yaml")
    for name in sorted(config):
        if SECRET_NAMES.search(name):
            problems.append(f"deploy/k8s/base/configmap.yaml: {name} looks secret, belongs in the Secret")
    for name, value in load_all(K8S_BASE / "secret.example.yaml")[0]["stringData"].items():
        if "CHANGE-ME" not in str(value):
            problems.append(f"deploy/k8s/base/secret.example.yaml: {name} must be a CHANGE-ME placeholder")
    for line in (DEPLOY / "env.example").read_text().splitlines():
        m = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if m and SECRET_NAMES.search(m.group(1)) and m.group(2) and "CHANGE-ME" not in m.group(2):
            problems.append(f"deploy/env.example: {m.group(1)} has a value; secrets stay CHANGE-ME")
    return problems


def check_alerts():
    problems = []
    doc = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    groups = doc.get("groups") if isinstance(doc, dict) else None
    if not groups:
        return ["alerts.yml: no groups"]
    seen_groups, seen_alerts = set(), set()
    for group in groups:
        name = group.get("name")
        if not name or name in seen_groups:
            problems.append(f"alerts.yml: group name missing or repeated: {name!r}")
        seen_groups.add(name)
        for rule in group.get("rules") or []:
            alert = rule.get("alert")
            where = f"alerts.yml {name}/{alert}"
            if not alert or alert in seen_alerts:
                problems.append(f"{where}: alert name missing or repeated")
            seen_alerts.add(alert)
            unknown = set(rule) - {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
            if unknown:
                problems.append(f"{where}: unknown keys {sorted(unknown)}")
            expr = rule.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                problems.append(f"{where}: expr missing")
                continue
            if expr.count("(") != expr.count(")") or expr.count("{") != expr.count("}"):
                problems.append(f"{where}: unbalanced brackets in expr")
            if "for" in rule and not DURATION.match(str(rule["for"])):
                problems.append(f"{where}: bad duration {rule['for']!r}")
            labels = rule.get("labels") or {}
            if labels.get("severity") not in SEVERITIES:
                problems.append(f"{where}: severity must be one of {sorted(SEVERITIES)}")
            if not (rule.get("annotations") or {}).get("summary"):
                problems.append(f"{where}: annotations.summary missing")
            problems += metric_problems(where, expr, labels)
    return problems


def check_prometheus_config():
    problems = []
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    if "/etc/prometheus/alerts.yml" not in config.get("rule_files", []):
        problems.append("prometheus.yml: alerts.yml is not loaded")
    jobs = {job["job_name"] for job in config.get("scrape_configs", [])}
    alerts = (DEPLOY / "prometheus" / "alerts.yml").read_text()
    for job in set(re.findall(r'job="([\w-]+)"', alerts)) - {"realio-readyz"}:
        if job not in jobs:
            problems.append(f"alerts.yml refers to job {job!r} that prometheus.yml does not scrape")
    return problems


def check_dashboard():
    problems = []
    path = DEPLOY / "grafana" / "dashboards" / "realio.json"
    dash = json.loads(path.read_text())
    for key in ("uid", "title", "panels", "schemaVersion"):
        if key not in dash:
            problems.append(f"realio.json: {key} missing")
    ids = [panel.get("id") for panel in dash.get("panels", [])]
    if len(ids) != len(set(ids)) or None in ids:
        problems.append("realio.json: panel ids missing or repeated")
    for panel in dash.get("panels", []):
        if panel.get("type") == "row":
            continue
        if not panel.get("targets") or not all(t.get("expr") for t in panel["targets"]):
            problems.append(f"realio.json: panel {panel.get('title')!r} has no query")
        for target in panel.get("targets") or []:
            problems += metric_problems(f"realio.json panel {panel.get('title')!r}", target.get("expr") or "", {})
        if set(panel.get("gridPos", {})) != {"h", "w", "x", "y"}:
            problems.append(f"realio.json: panel {panel.get('title')!r} has no gridPos")
    provider = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "dashboards" / "realio.yml").read_text())
    if provider.get("apiVersion") != 1 or not provider.get("providers"):
        problems.append("grafana provisioning: dashboards provider missing")
    return problems


def check_processes():
    """Roles, probes and the single beat, in compose.yaml and the Kubernetes base."""
    problems = []
    entry = (DEPLOY / "docker-entrypoint.sh").read_text()
    roles = set(re.findall(r"^\s+([a-z]+)\)", entry, re.M))
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    for name, service in compose["services"].items():
        if str(service.get("image", "")).startswith("${REALIO_IMAGE"):
            command = (service.get("command") or ["web"])[0]
            if command not in roles:
                problems.append(f"compose.yaml: {name} runs unknown role {command!r}")
    if compose["services"]["beat"].get("deploy", {}).get("replicas") != 1:
        problems.append("compose.yaml: beat must have exactly one replica")
    caddy = (DEPLOY / "caddy" / "Caddyfile").read_text()
    if not re.search(r"handle /ws/\*\s*\{\s*reverse_proxy asgi:8000", caddy):
        problems.append("Caddyfile: /ws/ must go to asgi")
    deployments = {}
    for path in K8S_BASE.glob("*.yaml"):
        for doc in load_all(path):
            if doc.get("kind") == "Deployment":
                deployments[doc["metadata"]["name"]] = doc
    beat = deployments.get("realio-beat")
    if not beat or beat["spec"].get("replicas") != 1 or beat["spec"].get("strategy", {}).get("type") != "Recreate":
        problems.append("k8s: realio-beat must have replicas 1 and strategy Recreate")
    for name, doc in deployments.items():
        pod = doc["spec"]["template"]["spec"]
        if not pod.get("securityContext", {}).get("runAsNonRoot"):
            problems.append(f"k8s {name}: runAsNonRoot missing")
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            if not container.get("securityContext", {}).get("readOnlyRootFilesystem"):
                problems.append(f"k8s {name}/{container['name']}: readOnlyRootFilesystem missing")
            if "limits" not in container.get("resources", {}):
                problems.append(f"k8s {name}/{container['name']}: resource limits missing")
        if name in ("realio-web", "realio-asgi"):
            main = pod["containers"][0]
            if main.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
                problems.append(f"k8s {name}: liveness must probe /healthz")
            if main.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
                problems.append(f"k8s {name}: readiness must probe /readyz")
    ingress = (K8S_BASE / "ingress.yaml").read_text()
    if not re.search(r"path: /ws/\s+pathType: Prefix\s+backend:\s+service:\s+name: realio-asgi", ingress):
        problems.append("k8s ingress: /ws/ must go to realio-asgi")
    return problems


CHECKS = [check_env, check_alerts, check_prometheus_config, check_dashboard, check_processes]


def main():
    problems = [problem for check in CHECKS for problem in check()]
    for problem in problems:
        print(f"  {problem}")
    print(f"deploy checks: {len(CHECKS)} groups, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
