"""A JPEG-coloured upload through a real Server: the hash names the pixels the server decodes."""

import threading

import numpy as np
import pytest

from scene_r1.backend.data.synth import SynthConfig, build_synthetic
from scene_r1.backend.pipeline.pipeline import Pipeline
from scene_r1.backend.pipeline.settings import PipelineSettings
from scene_r1.backend.service.server import Server, ServerSettings
from scene_r1.shared.client import Client
from scene_r1.shared.protocol import Message, decode, encode
from scene_r1.shared.scene import Scene
from scene_r1.shared.scene_wire import lossy_colour_wire, scene_from_wire, scene_to_wire


@pytest.fixture(scope="module")
def scene() -> Scene:
    synthetic = build_synthetic(SynthConfig(seed=51, frames=4, width=96, height=72))
    rendered = [synthetic.scene.frame(i) for i in range(4)]
    return Scene.from_arrays(
        [f.rgb for f in rendered],
        [f.depth for f in rendered],
        synthetic.scene.intrinsics,
        synthetic.scene.poses,
        synthetic.scene.timestamps,
        name="jpeg-room",
        cache_frames=4,
    )


def test_the_jpeg_hash_is_deterministic_and_names_the_decoded_pixels(scene):
    meta, arrays = scene_to_wire(scene)
    jpeg_meta, sent = lossy_colour_wire(meta, arrays)
    assert lossy_colour_wire(meta, arrays)[0]["hash"] == jpeg_meta["hash"] != meta["hash"]
    codecs = {name: "zlib" for name in sent if name.startswith("depth/")}
    back = decode([bytes(f) for f in encode(Message("scene.upload", payload=jpeg_meta, arrays=sent), codecs=codecs)])
    held = scene_from_wire(back.payload, back.arrays)  # raises on a hash mismatch
    assert not (held.frame(0).rgb == scene.frame(0).rgb).all()  # lossy: the pixels did change
    assert np.array_equal(held.frame(0).depth, np.nan_to_num(scene.frame(0).depth, nan=0.0))


def test_a_jpeg_upload_and_a_query_through_a_real_server(tiny_models, scene):
    pipeline = Pipeline(
        PipelineSettings(vlm=str(tiny_models["vlm"]), tracker="geometric", dtype="float32", max_new_tokens=8)
    )
    server = Server(ServerSettings(bind="tcp://127.0.0.1:*"), pipeline=pipeline)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        assert server.ready.wait(10)
        with Client(server.endpoint, timeout=60) as client:
            key = client.upload(scene, codec="jpeg")
            assert key == lossy_colour_wire(*scene_to_wire(scene))[0]["hash"]
            assert client.upload(scene, codec="jpeg") == key  # held: the same hash again
            result = client.query(key, "lift", frame=1, box=[20, 15, 70, 55])
            assert result.mode == "lift" and result.scene == "jpeg-room"
    finally:
        server.stop()
        thread.join(10)
