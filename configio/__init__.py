"""configio: reading leadflow's configuration files - below every layer.

    leadflow/  ->  agents/  ->  streams/  ->  configio/

The one YAML reader (:mod:`configio.yamlio`: duplicate keys rejected, alias bombs and oversized
files refused, the file name in every error) is needed by the runtime (``streams.codec`` reads
``schemas/registry.yaml``) and by the capabilities' pure configuration modules (scoring model,
routing, SLA, roster). ``streams`` must not import ``agents`` and the pure modules must not
import ``streams`` (tests/unit/test_layers.py, tests/unit/test_rules_purity.py), so the reader
lives here, where both may import it: a package that imports only the standard library and
PyYAML, nothing of leadflow. ``agents.domain.yamlio`` re-exports it for the capabilities.
"""
