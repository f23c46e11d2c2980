"""Realistic, reproducible input traffic for leadflow (the load generator of the demo and bench).

- ``personas``: who visits (enterprise buyers, SMB, students, competitors, bots, gmail
  researchers, existing customers) and how they behave;
- ``sessions``: ``TrafficSimulator`` - seeded journeys (page views, forms, email engagement)
  interleaved into one stream of ``SimEvent`` matching docs/contracts.md;
- ``crm``: ``CrmSimulator`` - reps reacting to assignments with realistic (and late) first
  touches and dispositions, some missing;
- ``publisher``: ``Publisher`` - aiokafka publishing at a rate or as fast as possible.

Everything but the publisher is pure (no I/O, no clock, no global random state).
"""

from leadflow.simulator.crm import CrmAction, CrmSimulator
from leadflow.simulator.personas import DEFAULT_MIX, PERSONAS, PERSONAS_BY_NAME, Persona, parse_mix
from leadflow.simulator.publisher import Publisher, PublishStats
from leadflow.simulator.sessions import SUBJECTS, SimEvent, TrafficSimulator

__all__ = [
    "CrmAction",
    "CrmSimulator",
    "DEFAULT_MIX",
    "PERSONAS",
    "PERSONAS_BY_NAME",
    "Persona",
    "PublishStats",
    "Publisher",
    "SUBJECTS",
    "SimEvent",
    "TrafficSimulator",
    "parse_mix",
]
