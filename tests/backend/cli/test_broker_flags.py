"""`scene-r1 broker --max-message-mb`, like serve's: the cap reaches the Broker; nonsense is one line."""

import pytest

from scene_r1.backend.cli.main import build_parser, main
from scene_r1.backend.cli.service import broker_from_args, max_message_bytes


def test_the_broker_takes_the_message_cap():
    args = build_parser().parse_args(["broker", "--max-message-mb", "1.5"])
    assert broker_from_args(args).max_message_bytes == int(1.5 * (1 << 20))
    serve = build_parser().parse_args(["serve", "--max-message-mb", "1.5"])
    assert max_message_bytes(serve) == max_message_bytes(args)


@pytest.mark.parametrize("command", ["broker", "serve"])
def test_a_nonsense_cap_is_one_line(command, capsys):
    assert main([command, "--max-message-mb", "-3"]) == 2
    assert "--max-message-mb must be a positive" in capsys.readouterr().err
