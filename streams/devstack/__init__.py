"""Local dev stack: a real single-node Kafka (KRaft, jars from Maven Central) and a real
Redis, as plain child processes (no Docker), each findable via a pid file and stoppable.

    stack = DevStack.from_settings(load_settings())
    report = stack.up()      # idempotent; StackReport with timings
    stack.status()           # {"kafka": {...}, "redis": {...}}
    stack.down()
"""

from streams.devstack.base import ManagedProcess, ProcessStatus
from streams.devstack.exceptions import (
    DevStackError,
    JarFetchError,
    NotReadyError,
    PortInUseError,
    ProcessExitedError,
    ToolMissingError,
)
from streams.devstack.kafka import KafkaServer
from streams.devstack.redis import RedisServer
from streams.devstack.stack import DevStack, StackReport

__all__ = [
    "DevStack",
    "DevStackError",
    "JarFetchError",
    "KafkaServer",
    "ManagedProcess",
    "NotReadyError",
    "PortInUseError",
    "ProcessExitedError",
    "ProcessStatus",
    "RedisServer",
    "StackReport",
    "ToolMissingError",
]
