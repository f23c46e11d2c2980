"""Print a preset deflate dictionary for lead state bytes (agents/scoring/state_codec.py).

Used once per dictionary version: a published dictionary is never changed (every stored state
compressed with it needs it to decompress), so a new one gets a new format byte. The text is
the tail of simulator lead states as the worker writes them (orjson of ``LeadState.to_dict()``,
reorder window included): field names, stage and signal names, touch kinds and URL shapes,
the strings every lead repeats. Deflate finds the strings nearest the end cheapest.

    python scripts/make_state_dictionary.py > agents/scoring/state_dictionary.py   # then rename V<n>
"""

from __future__ import annotations

import orjson

from leadflow.bench.recovery_state import simulate_pool
from leadflow.compose import load_configs
from streams.settings import load_settings

SIZE = 8192  # 8 KiB: 16 KiB saved 3 % more on simulator states, 4 KiB cost 6 % more
END_MS = 1_793_000_000_000  # a fixed clock: the same text on every run


def main() -> None:
    settings = load_settings()
    pool = simulate_pool(settings, load_configs(settings), 40, seed=7, end_ms=END_MS)
    text = b"".join(orjson.dumps(orjson.loads(s.value)) for s in pool.states)[-SIZE:]
    print('"""Preset deflate dictionary v1 of lead state bytes: made by scripts/make_state_dictionary.py.')
    print("")
    print('Never edit: states compressed with it need exactly these bytes (state_codec.py)."""')
    print("")
    print("STATE_DICTIONARY_V1 = (")
    for i in range(0, len(text), 80):
        print(f"    {text[i : i + 80]!r}")
    print(")")


if __name__ == "__main__":
    main()
