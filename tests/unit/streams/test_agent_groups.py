"""One Faust agent per topic (streams.app.agent_groups, Pipeline.build_agents): a message is
iterated once and handed to every consumer of its topic, in registration order."""

from __future__ import annotations

import asyncio

import pytest

from streams.app import Subscription, agent_groups
from streams.codec import Codec, SchemaRegistry
from streams.consume import make_consumer
from streams.settings import load_settings
from streams.topic_names import TopicNames

NAMES = TopicNames.for_prefix("t")


def _sub(name: str, *fields: str, hands_off_to: tuple[str, ...] = ()) -> Subscription:
    async def handle(value, meta):
        return None

    consumer, got = make_consumer(
        NAMES, {f: (lambda raw: raw) for f in fields}, name=name, capability=name, handle=handle
    )
    return Subscription(consumer, got, hands_off_to)


def _names(groups) -> list[list[str]]:
    return [[sub.consumer.name for sub in group] for group in groups]


def test_consumers_of_one_topic_share_an_agent_and_others_keep_their_own():
    subs = [
        _sub("capture", "form_submits", "web_activity"),
        _sub("score", "lead_events"),
        _sub("route", "mqls", "erasures"),
        _sub("sla", "assignments", "lead_events", "sla_commands"),
        _sub("dispose", "lead_events"),
    ]
    assert _names(agent_groups(subs)) == [["capture"], ["score", "sla", "dispose"], ["route"]]
    # A consumer that hands events to another topic's consumers shares their agent.
    subs[0] = _sub("capture", "form_submits", "web_activity", hands_off_to=("lead_events",))
    assert _names(agent_groups(subs)) == [["capture", "score", "sla", "dispose"], ["route"]]


def test_overlap_is_transitive_and_registration_order_is_kept():
    subs = [_sub("a", "mqls"), _sub("b", "assignments"), _sub("c", "mqls", "assignments"), _sub("d", "lead_events")]
    assert _names(agent_groups(subs)) == [["a", "b", "c"], ["d"]]


def test_the_worker_reads_each_topic_with_one_agent(tmp_path):
    from leadflow.compose import create_app

    pipeline = create_app(load_settings(store="memory://", data_dir=str(tmp_path)), codec=Codec(SchemaRegistry.load()))
    readers: dict[str, list[str]] = {}
    for name, agent in pipeline.app.agents.items():
        for topic in agent.channel.topics:
            readers.setdefault(topic, []).append(name)
    assert readers and all(len(agents) == 1 for agents in readers.values()), readers
    lead_events = readers[pipeline.topic_names.lead_events][0]
    assert lead_events.split("+") == [
        "capture_input_events",
        "score_lead_events",
        "buffer_visitor_events",
        "track_sla_clocks",
        "track_conversions",
    ]
    assert readers[pipeline.topic_names.form_submits] == [lead_events]


def test_a_message_goes_to_each_consumer_of_its_topic_in_order(tmp_path):
    from leadflow.compose import create_app

    seen: list[tuple[str, bytes]] = []

    def recorder(name):
        async def handle(value, meta):
            seen.append((name, value))

        return handle

    def register(pipeline):
        for name, topics in (("x", ("mqls",)), ("y", ("mqls", "assignments"))):
            decoders = {t: (lambda raw: raw) for t in topics}
            pipeline.consume(decoders, name=name, capability=name, handle=recorder(name))

    settings = load_settings(store="memory://", data_dir=str(tmp_path))
    pipeline = create_app(settings, codec=Codec(SchemaRegistry.load()), only=[register])
    with pytest.raises(RuntimeError, match="after the pipeline's agents were built"):
        register(pipeline)
    agents = [a for name, a in pipeline.app.agents.items() if name == "x+y"]
    assert len(agents) == 1

    class Message:
        def __init__(self, topic: str, value: bytes) -> None:
            self.topic, self.partition, self.offset, self.key, self.value = topic, 0, 0, b"k", value
            self.timestamp, self.headers = None, None

    names = pipeline.topic_names

    class Stream:  # what the agent reads of a Faust stream
        async def events(self):
            for topic, value in ((names.mqls, b"1"), (names.assignments, b"2")):
                yield type("Event", (), {"message": Message(topic, value)})()

    asyncio.run(agents[0].fun(Stream()))
    assert seen == [("x", b"1"), ("y", b"1"), ("y", b"2")]


def test_hand_off_delivers_in_process_only_on_the_partition_the_key_goes_to(tmp_path):
    from leadflow.compose import create_app
    from streams.app import partition_for
    from streams.consume import Meta

    seen: list[tuple[str, int, bytes]] = []

    async def handle(value, meta):
        seen.append((meta.topic, meta.partition, value))

    def register(pipeline):
        pipeline.consume("form_submits", decode=lambda raw: raw, name="a", capability="a", handle=handle,
                         hands_off_to=("lead_events",))  # fmt: skip
        pipeline.consume("lead_events", decode=lambda raw: raw, name="b", capability="b", handle=handle)

    settings = load_settings(store="memory://", data_dir=str(tmp_path), topic_partitions=8)
    pipeline = create_app(settings, codec=Codec(SchemaRegistry.load()), only=[register])
    names, key = pipeline.topic_names, b"ld_00000000000000000001"
    own = partition_for(key, 8)
    assert sorted(a for a in pipeline.app.agents) == ["a+b"]

    elsewhere = Meta(names.form_submits, (own + 1) % 8, 5, key=b"x", value=b"raw")
    assert asyncio.run(pipeline.hand_off("lead_events", key, b"event", elsewhere)) is False
    assert seen == []
    here = Meta(names.form_submits, own, 6, key=b"x", value=b"raw")
    assert asyncio.run(pipeline.hand_off("lead_events", key, b"event", here)) is True
    assert seen == [(names.lead_events, own, b"event")]
    assert pipeline.metrics.registry.get_sample_value("leadflow_events_handed_off_total") == 1.0
    # No consumer was registered as a hand-off target from this topic: always a round trip.
    assert asyncio.run(pipeline.hand_off("mqls", key, b"event", here)) is False
