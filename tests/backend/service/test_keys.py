"""`scene-r1 keys`: three key pairs, the client and the worker authorized, secrets 0600."""

import stat

from scene_r1.backend.cli.main import main


def test_keys_writes_secret_files_only_their_owner_can_read(tmp_path, capsys):
    assert main(["keys", str(tmp_path / "keys")]) == 0
    secrets = sorted((tmp_path / "keys").glob("*.key_secret"))
    assert [p.name for p in secrets] == ["client.key_secret", "server.key_secret", "worker.key_secret"]
    for path in secrets:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert (tmp_path / "keys" / "authorized_clients" / "client.key").is_file()
    assert (tmp_path / "keys" / "authorized_workers" / "worker.key").is_file()
    assert "0600" in capsys.readouterr().out
