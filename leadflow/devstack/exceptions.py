"""Errors raised by the local dev stack. Every message says what to do next."""

from __future__ import annotations


class DevStackError(RuntimeError):
    """Base class: anything that stops the local Kafka/Redis stack from coming up or down."""


class ToolMissingError(DevStackError):
    """A required executable (java, mvn, redis-server) is not on PATH."""


class JarFetchError(DevStackError):
    """Maven could not resolve the Kafka jars."""


class PortInUseError(DevStackError):
    """Something that is not ours already listens on a port we need."""


class ProcessExitedError(DevStackError):
    """The server process died before it became ready."""


class NotReadyError(DevStackError):
    """The server process is alive but did not answer before the deadline."""
