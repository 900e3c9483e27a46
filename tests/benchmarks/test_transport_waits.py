"""The transport benchmark's own ZeroMQ waits end within a deadline."""

import pytest
import zmq

from scene_r1.benchmarks.transport import raw_pyzmq_seconds, receive_within


def test_a_wait_with_nobody_answering_ends_in_a_timeout():
    context = zmq.Context()
    dealer = context.socket(zmq.DEALER)
    dealer.connect("tcp://127.0.0.1:9")  # nothing listens there
    try:
        with pytest.raises(TimeoutError, match="within"):
            receive_within(dealer, 0.2)
    finally:
        dealer.close(0)
        context.term()


def test_the_raw_baseline_still_measures():
    assert 0 < raw_pyzmq_seconds([b"header", bytes(1 << 16)], repeats=2, deadline_s=10) < 10
