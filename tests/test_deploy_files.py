"""The files an operator copies (deploy/): the environment sample names every setting the
program reads and nothing else, makes a configuration that `sync` and `run` accept, and the
systemd unit reads that file and keeps the state where the sample says."""

from __future__ import annotations

import re
from pathlib import Path

from mutmut_support import original_source

from app.config import SyncConfig
from app.daemon.settings import ServiceSettings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
# Where the code reads a setting: the config readers, and the command line's own.
READERS = ["app/config.py", "app/daemon/settings.py", "app/cli/entry.py", "app/cli/service.py"]
READ = re.compile(r"""(?:get\.\w+|source\.get|env\.get)\(\s*["']([A-Z][A-Z0-9_]+)["']""")
SETTING = re.compile(r"^#?\s*([A-Z][A-Z0-9_]+)=(.*)$")


def settings_the_code_reads() -> set[str]:
    found: set[str] = set()
    for reader in READERS:
        source = original_source(ROOT) / reader
        found |= set(READ.findall(source.read_text(encoding="utf-8")))
    return found


def sample() -> dict[str, tuple[str, bool]]:
    """Each setting of the sample: its value, and whether it is set (not commented out)."""
    found = {}
    for line in (DEPLOY / "letta-matrix-sync.env").read_text(encoding="utf-8").splitlines():
        match = SETTING.match(line)
        if match:
            found[match.group(1)] = (match.group(2), not line.startswith("#"))
    return found


def unit() -> dict[str, str]:
    text = (DEPLOY / "letta-matrix-sync.service").read_text(encoding="utf-8")
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line and line[0] != "#")
    return {key: value for key, value in pairs}


def test_the_environment_sample_lists_every_setting_the_code_reads_and_no_other() -> None:
    read = settings_the_code_reads()
    assert len(read) > 20, read  # the readers were found
    assert set(sample()) == read


def test_the_environment_sample_makes_a_configuration_sync_and_run_accept() -> None:
    env = {name: value for name, (value, is_set) in sample().items() if is_set}
    config = SyncConfig.from_env(env)
    settings = ServiceSettings.from_env(env)
    assert config.appservice_registration is not None and config.admin_user != config.username
    assert settings.loopback and str(config.data_dir) == "/var/lib/letta-matrix-sync"


def test_the_unit_reads_the_sample_and_keeps_the_state_where_it_says() -> None:
    service = unit()
    header = (DEPLOY / "letta-matrix-sync.env").read_text(encoding="utf-8").splitlines()[0]
    assert header.startswith(f"# {service['EnvironmentFile']}:")
    assert service["ExecStart"].endswith("letta-matrix-sync run")
    data_dir, _ = sample()["MATRIX_DATA_DIR"]
    assert data_dir == f"/var/lib/{service['StateDirectory']}" == service["WorkingDirectory"]
    assert service["StateDirectoryMode"] == "0700"
