"""Classroom tenants: many learners on one cluster, each kept to their own namespaces.

Per learner (a DNS-1123 label, e.g. ``alice``):

- namespaces ``alice-dev``, ``alice-staging``, ``alice-prod``, labelled with the
  learner, made by the instructor (a tenant's engine may create no namespace);
- a ServiceAccount ``gitops-lab-learner`` in ``alice-dev``: the identity of the
  learner's kit. RoleBindings in the three namespaces give it the class-wide
  ClusterRole ``gitops-lab-tenant`` (workloads, config, services; no RBAC, no
  engine objects), and a Role in the engine's namespace lets it read and
  annotate its own engine objects, by name, and nothing else there;
- Flux: a ServiceAccount ``gitops-lab-alice`` in flux-system that the learner's
  Kustomizations impersonate (spec.serviceAccountName), bound to the same
  ClusterRole in the same three namespaces only;
- Argo CD: the AppProject ``gitops-lab-alice`` (see ArgoCD.register), limited
  to the learner's repository and namespaces and to no cluster-wide kind.

Class-wide: the ClusterRole, and a ValidatingAdmissionPolicy under which a
learner's kit may change nothing of an engine object but its metadata (a
refresh or reconcile request), so a learner cannot point their Application or
Kustomization at another project, ServiceAccount or namespace.
"""

from __future__ import annotations

import re
from typing import Any

from gitops_lab.adapters.engines.argocd import API
from gitops_lab.adapters.engines.base import Engine, project_name, registered_name
from gitops_lab.adapters.engines.flux import KUSTOMIZE_API, SOURCE_API, reconciler_account
from gitops_lab.adapters.repo.layout import ENVIRONMENTS
from gitops_lab.errors import UsageError

TENANT_ROLE = "gitops-lab-tenant"
LEARNER_ACCOUNT = "gitops-lab-learner"
TENANT_LABEL = "gitops-lab.io/tenant"
CLASS_LABEL = "gitops-lab.io/class"
ADMISSION_POLICY = "gitops-lab-tenant-engine-objects"
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# The longest learner name whose namespaces ("<learner>-staging") and Flux
# ServiceAccount ("gitops-lab-<learner>") still fit in 63 characters.
MAX_LEARNER = 63 - len("gitops-lab-") - len("-staging")

# What a learner (and a Flux tenant) may do in their own namespaces.
_TENANT_RULES = [
    {
        "apiGroups": [""],
        "resources": [
            "pods",
            "services",
            "configmaps",
            "secrets",
            "persistentvolumeclaims",
            "endpoints",
            "serviceaccounts",
        ],
        "verbs": ["*"],
    },
    {"apiGroups": [""], "resources": ["pods/log", "events"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["pods/portforward"], "verbs": ["create"]},
    {
        "apiGroups": ["apps"],
        "resources": ["deployments", "deployments/scale", "replicasets", "statefulsets", "daemonsets"],
        "verbs": ["*"],
    },
    {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": ["*"]},
    {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": ["*"]},
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": ["*"]},
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses", "networkpolicies"], "verbs": ["*"]},
    {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["get", "list", "watch"]},
]

# Engine objects a learner may read and annotate: (apiGroup, resource, kind).
ENGINE_OBJECTS = {
    "argocd": [("argoproj.io", "applications")],
    "flux": [("kustomize.toolkit.fluxcd.io", "kustomizations"), ("source.toolkit.fluxcd.io", "gitrepositories")],
}


def check_learner_name(name: str) -> str:
    """A learner's name becomes namespace and object names: a DNS-1123 label, short enough."""
    if not _LABEL.match(name) or len(name) > MAX_LEARNER:
        raise UsageError(
            f"learner name {name!r} is not usable in Kubernetes names",
            fix=f"use lower-case letters, digits and '-', starting and ending with a letter or digit, "
            f"at most {MAX_LEARNER} characters",
        )
    return name


def tenant_namespaces(learner: str) -> dict[str, str]:
    """dev/staging/prod -> the learner's namespace for it."""
    return {env: f"{learner}-{env}" for env in ENVIRONMENTS}


def learner_subject(learner: str) -> dict[str, str]:
    return {"kind": "ServiceAccount", "name": LEARNER_ACCOUNT, "namespace": tenant_namespaces(learner)["dev"]}


def learner_username(learner: str) -> str:
    """How the API server names the learner's kit in audit logs and admission."""
    return f"system:serviceaccount:{tenant_namespaces(learner)['dev']}:{LEARNER_ACCOUNT}"


def _meta(
    name: str, namespace: str | None = None, class_name: str | None = None, learner: str | None = None
) -> dict[str, Any]:
    labels = {"app.kubernetes.io/part-of": "gitops-lab"}
    if class_name:
        labels[CLASS_LABEL] = class_name
    if learner:
        labels[TENANT_LABEL] = learner
    meta: dict[str, Any] = {"name": name, "labels": labels}
    if namespace:
        meta["namespace"] = namespace
    return meta


def class_objects(class_name: str) -> list[dict[str, Any]]:
    """Objects every tenant of the class shares: the tenant ClusterRole and the admission policy."""
    groups = sorted({group for objects in ENGINE_OBJECTS.values() for group, _ in objects})
    resources = sorted({resource for objects in ENGINE_OBJECTS.values() for _, resource in objects})
    same = "(has(object.{f}) == has(oldObject.{f})) && (!has(object.{f}) || object.{f} == oldObject.{f})"
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": _meta(TENANT_ROLE),
            "rules": _TENANT_RULES,
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": _meta(ADMISSION_POLICY),
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {"apiGroups": groups, "apiVersions": ["*"], "operations": ["UPDATE"], "resources": resources}
                    ]
                },
                "matchConditions": [
                    {
                        "name": "a-learner-kit",
                        "expression": f"request.userInfo.username.startsWith('system:serviceaccount:') && "
                        f"request.userInfo.username.endsWith(':{LEARNER_ACCOUNT}')",
                    }
                ],
                "validations": [
                    {
                        "expression": " && ".join(same.format(f=f) for f in ("spec", "operation", "status")),
                        "message": "a learner may only annotate engine objects (ask for a refresh or a reconcile); "
                        "ask the instructor to change anything else",
                    },
                ],
            },
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": _meta(ADMISSION_POLICY),
            "spec": {"policyName": ADMISSION_POLICY, "validationActions": ["Deny"]},
        },
    ]


def tenant_objects(class_name: str, learner: str, engine: Engine) -> list[dict[str, Any]]:
    """Everything one learner's tenant needs on the cluster, in apply order (namespaces first).

    The engine's own registration (Applications or Kustomizations) comes from
    ``engine.register``; this is what surrounds it.
    """
    namespaces = tenant_namespaces(learner)
    subjects = [learner_subject(learner)]
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(ns, None, class_name, learner)}
        for ns in namespaces.values()
    ]
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": _meta(LEARNER_ACCOUNT, namespaces["dev"], class_name, learner),
        }
    )
    if engine.name == "flux":
        account = reconciler_account(learner)
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": _meta(account, engine.namespace, class_name, learner),
            }
        )
        subjects.append({"kind": "ServiceAccount", "name": account, "namespace": engine.namespace})
    for ns in namespaces.values():
        objects.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": _meta(TENANT_ROLE, ns, class_name, learner),
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": TENANT_ROLE},
                "subjects": subjects,
            }
        )
    names = [registered_name(env, learner) for env in ENVIRONMENTS]
    role = project_name(learner)
    objects.append(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _meta(role, engine.namespace, class_name, learner),
            "rules": [
                {
                    "apiGroups": [group],
                    "resources": [resource],
                    "resourceNames": names,
                    "verbs": ["get", "list", "watch", "patch"],
                }
                for group, resource in ENGINE_OBJECTS[engine.name]
            ],
        }
    )
    objects.append(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": _meta(role, engine.namespace, class_name, learner),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
            "subjects": [learner_subject(learner)],
        }
    )
    return objects


def engine_registration(learner: str, engine: Engine) -> list[tuple[str, str, str]]:
    """(apiVersion, kind, name) of what ``engine.register`` made for the learner, in the engine namespace."""
    project = project_name(learner)
    if engine.name == "argocd":
        return [(API, "Application", registered_name(env, learner)) for env in ENVIRONMENTS] + [
            (API, "AppProject", project),
            ("v1", "Secret", f"{project}-repo"),
        ]
    return (
        [(KUSTOMIZE_API, "Kustomization", registered_name(env, learner)) for env in ENVIRONMENTS]
        + [(SOURCE_API, "GitRepository", registered_name(env, learner)) for env in ENVIRONMENTS]
        + [("v1", "Secret", f"{project}-git")]
    )
