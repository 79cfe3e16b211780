"""What a chaos campaign counts: releases, faults and every violation, and the one summary line."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

# The summary's violation counters, in the order they are printed; any nonzero fails the test.
VIOLATIONS = ("double promotions", "lost promotions", "lost reverts", "duplicate reverts", "repeated side effects",
              "repeated events", "history rewrites", "weight on failed canary", "stuck releases", "extra runs",
              "wrong outcomes", "disagreements", "operator exits", "tracebacks")


@dataclass
class Ledger:
    seed: int
    say: Callable[[str], None]
    counts: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] += n

    def violation(self, kind: str, cycle: int, where: str, seen: str) -> None:
        assert kind in VIOLATIONS, kind
        self.counts[kind] += 1
        line = f"VIOLATION {kind}: cycle {cycle}, seed {self.seed}, {where}: {seen}"
        self.violations.append(line)
        self.say(line)

    @property
    def failed(self) -> bool:
        return any(self.counts[k] for k in VIOLATIONS)

    def summary(self) -> str:
        c = self.counts
        parts = [f"chaos: seed {self.seed}, {c['cycles']} kill cycles",
                 f"releases {c['good'] + c['bad']} (good {c['good']}, bad {c['bad']})",
                 f"kills {c['kills']}",
                 f"faults (prometheus killed {c['prometheus kills']}, frozen {c['prometheus freezes']}, "
                 f"git outages {c['git outages']}, human pushes {c['human pushes']}, "
                 f"mutated specs {c['mutants']}, accepted {c['mutants accepted']})"]
        for kind in VIOLATIONS:
            text = f"{kind} {c[kind]}"
            if kind == "repeated side effects":
                text += f" (redelivered {c['redelivered']})"
            parts.append(text)
        if c["sandbox data plane failures"]:
            parts.append(f"(not the operator: sandbox data plane failures {c['sandbox data plane failures']})")
        return ", ".join(parts)
