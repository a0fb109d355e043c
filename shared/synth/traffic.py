"""A deterministic stream of sign-ins: 1-4 requests each, a mix of bound, unbound and unevaluated."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .records import APPS, PLATFORMS, RESOURCES, policy, record, uid


@dataclass
class Traffic:
    """A deterministic stream of sign-ins: 1-4 requests each, a mix of bound, unbound and unevaluated."""

    seed: int = 7
    users: int = 40
    fillers: int = 5
    unbound_share: float = 0.12
    unevaluated_share: float = 0.2
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def signin(self, at: datetime, **overrides: Any) -> list[dict[str, Any]]:
        """The records of one sign-in; `overrides` force fields of every request (app, status, code, ...)."""
        rng = self.rng
        correlation_id = uid(rng)
        user = overrides.pop("user", f"user{rng.randrange(self.users):03d}@contoso.com")
        os_name, trust = PLATFORMS[rng.randrange(len(PLATFORMS))]
        os_name, trust = overrides.pop("os", os_name), overrides.pop("trust_type", trust)
        app = overrides.pop("app", rng.choice(list(APPS)[:4]))
        enforced = rng.random() < 0.3
        roll = rng.random()
        kind = (
            "unbound"
            if roll < self.unbound_share
            else ("none" if roll < self.unbound_share + self.unevaluated_share else "bound")
        )
        kind = overrides.pop("status", kind)
        code = overrides.pop("code", rng.choice([1002, 1003, 1005, 1006, 1008]) if kind == "unbound" else 0)
        records = []
        for index in range(rng.randint(1, 4)):
            status = kind if (kind != "unbound" or index == 0) else rng.choice(["bound", "unbound"])
            result = (
                ("failure" if enforced else "reportOnlyFailure")
                if status == "unbound"
                else ("success" if enforced else "reportOnlySuccess")
            )
            tp = policy(
                "CA-TP01 Require token protection" if enforced else "CA-TP02 Token protection pilot (report-only)",
                result=result,
                not_satisfied=["SignInTokenProtection"] if status == "unbound" else [],
            )
            records.append(
                record(
                    request_id=uid(rng),
                    correlation_id=correlation_id,
                    at=at + timedelta(seconds=index * rng.randint(1, 40)),
                    status=None if status == "none" else status,
                    code=code if status != "bound" else 0,
                    policies=[tp] if status != "none" else [],
                    user=user,
                    app=app,
                    resource=rng.choice(list(RESOURCES)[:3]),
                    os=os_name,
                    trust_type=trust,
                    fillers=self.fillers,
                    **overrides,
                )
            )
        return records
