"""Request ids are the client's own: jobs are keyed by (client route, request id), so one client
cannot cancel another's query and two clients may use the same id."""

import threading

import zmq

from scene_r1.backend.service.jobs import JobRunner, QueryJob, job_key

A, B = [b"\x00client-a"], [b"\x00client-b"]


def gated_runner(gate: threading.Event) -> JobRunner:
    """A real JobRunner whose job body waits for `gate` (or its own cancel), with a deadline."""

    def run(job: QueryJob, progress):
        for _ in range(500):
            if gate.wait(0.01):
                return {"text": job.text}, {}
            progress("waiting", 0, 1)  # raises Cancelled once the job is cancelled
        raise TimeoutError("the test's gate never opened")

    runner = JobRunner(run, threads=2)
    runner.start()
    return runner


def replies(runner: JobRunner, count: int) -> dict:
    finals = {}
    while len(finals) < count:
        route, message = runner.outbox.get(timeout=10)
        if message.type != "progress":
            finals[tuple(route)] = message
    return finals


def test_two_clients_may_use_the_same_request_id():
    gate = threading.Event()
    runner = gated_runner(gate)
    try:
        assert runner.submit(QueryJob(A, "q1", "s", "ask", "from a", {})) is not None
        assert runner.submit(QueryJob(B, "q1", "s", "ask", "from b", {})) is not None  # not taken for a retry
        assert runner.submit(QueryJob(A, "q1", "s", "ask", "from a", {})) is None  # A's own retry is
        gate.set()
        finals = replies(runner, 2)
        assert finals[tuple(A)].payload == {"text": "from a"} and finals[tuple(B)].payload == {"text": "from b"}
    finally:
        gate.set()
        runner.stop()


def test_one_client_cannot_cancel_another_clients_query():
    gate = threading.Event()
    runner = gated_runner(gate)
    try:
        runner.submit(QueryJob(A, "q1", "s", "ask", "from a", {}))
        assert not runner.cancel(B, "q1")  # B names A's id: nothing of B's is found, A's goes on
        assert runner.cancel(A, "q1")
        finals = replies(runner, 1)
        assert finals[tuple(A)].type == "error" and finals[tuple(A)].payload["code"] == "cancelled"
    finally:
        gate.set()
        runner.stop()


def test_routes_as_zmq_frames_and_as_bytes_are_the_same_client():
    assert job_key([zmq.Frame(b"\x00id")], "q") == job_key([b"\x00id"], "q") != job_key([b"\x00other"], "q")
