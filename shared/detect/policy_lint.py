"""Live flags of the traps in a token protection policy (core/trap.py), once per policy and trap.

Pure. A batch's requests that a token protection policy judged are its proof: from a browser, or to a resource
Token Protection does not support. The guardrail keeps which traps each policy was flagged for (in the policy's
row, written conditionally), so each is told once, to the informational destinations, with the requests that
prove it: the rollout owner hears of a trap the first time the logs show it, not on every batch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from shared.core.alert import Alert, fingerprint
from shared.core.policy_change import policy_key
from shared.core.request import Request
from shared.core.trap import TRAPS, traps_of

RULE = "token-protection-lint"
EXAMPLES = 5


def proofs(requests: Sequence[Request]) -> dict[str, dict[str, list[Request]]]:
    """The requests proving each trap, by policy key then trap."""
    found: dict[str, dict[str, list[Request]]] = {}
    for request in requests:
        kinds = traps_of(request) if request.policies else []
        for kind in kinds:
            for name, _, _ in request.policies:
                if name:
                    found.setdefault(policy_key(name), {}).setdefault(kind, []).append(request)
    return found


def display_name(key: str, proof: Sequence[Request]) -> str:
    """The policy's name as the logs give it (the key is folded)."""
    for request in proof:
        for name, _, _ in request.policies:
            if policy_key(name) == key:
                return name
    return key


def lint_alert(policy: str, kind: str, proof: list[Request], links: dict[str, str]) -> Alert:
    """The one message of a trap of one policy: what it is, what to change, and the requests that prove it."""
    proof = sorted(proof, key=lambda r: (r.at, r.id))
    trap = TRAPS[kind]
    first = proof[0]
    apps = Counter(r.app or "(no app)" for r in proof).most_common(5)
    resources = Counter(r.resource or "(no resource)" for r in proof).most_common(5)
    examples = list(dict.fromkeys(r.correlation_id for r in proof))[:EXAMPLES]
    return Alert(
        fingerprint=fingerprint(RULE, {"policy": policy_key(policy), "trap": kind}),
        rule=RULE,
        status="firing",
        at=first.at,
        title=f"{trap.title}: '{policy}'",
        severity="info",
        enforcement="any",
        group={"policy": policy, "trap": kind},
        starts_at=first.at,
        summary=f"{trap.advice} Shown by {len(proof):,} request(s) of one batch; the first at its event time.",
        kind="lint",
        current=float(len(proof)),
        top={"apps": apps, "resources": resources},
        examples=examples,
        links=links,
    )
