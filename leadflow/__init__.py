"""leadflow's tools: the command line, the local dev stack, the traffic simulator, the demo, the
benchmark and the fault-injection suite. They sit above both layers: ``streams`` (the runtime
library) and ``agents`` (the capabilities), wired together by :mod:`leadflow.compose`."""
