"""Step 2 of routing (``agents.routing.rules``), in Python: the owner a plan's stages yield.

``agents.routing.roster_store`` runs the same algorithm as a Lua script, atomically in Redis;
``select_reference`` is its specification and the unit tests' oracle. Pure.
"""

from __future__ import annotations

from agents.routing.rules import SINGLE, Decision, Plan


def select_reference(
    p: Plan,
    open_leads: dict[str, set[str]],
    cursors: dict[str, dict[str, int]],
    *,
    lead_id: str,
    now_ms: int,
) -> Decision:
    """Pick an owner exactly as ``agents.routing.roster_store``'s Lua script does, mutating
    ``open_leads`` (rep -> lead ids) and ``cursors`` (pool -> rep -> current weight)."""
    evaluated = []
    for index, stage in enumerate(p.stages):
        seen = []
        chosen = None
        if stage.kind == SINGLE:
            c = stage.candidates[0]
            n = len(open_leads.get(c.rep_id, ()))
            seen.append((c.rep_id, n, c.capacity))
            if c.capacity is None or n < c.capacity or lead_id in open_leads.get(c.rep_id, ()):
                chosen = c.rep_id
        else:
            weights = {}
            for c in stage.candidates:
                n = len(open_leads.get(c.rep_id, ()))
                seen.append((c.rep_id, n, c.capacity))
                room = (1 << 30) if c.capacity is None else c.capacity - n + (lead_id in open_leads.get(c.rep_id, ()))
                if room > 0:
                    weights[c.rep_id] = room
            if weights:
                state = cursors.setdefault(stage.pool or stage.rule, {})
                total = sum(weights.values())
                best, best_value = None, None
                for rep_id, weight in weights.items():  # candidate order breaks ties
                    state[rep_id] = state.get(rep_id, 0) + weight
                    if best_value is None or state[rep_id] > best_value:
                        best, best_value = rep_id, state[rep_id]
                assert best is not None  # weights is not empty
                state[best] -= total
                chosen = best
        evaluated.append(tuple(seen))
        if chosen is not None:
            for leads in open_leads.values():
                leads.discard(lead_id)
            open_leads.setdefault(chosen, set()).add(lead_id)
            return Decision(index, stage.rule, chosen, now_ms, p.roster_version, tuple(evaluated))
    raise AssertionError("the fallback stage always takes the lead")
