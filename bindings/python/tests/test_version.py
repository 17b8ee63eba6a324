"""The generated module loads the release cdylib and reports the workspace version."""

import tomllib
from pathlib import Path

import walink_ffi

REPO = Path(__file__).resolve().parents[3]


def test_version_is_the_workspace_version():
    with open(REPO / "Cargo.toml", "rb") as f:
        expected = tomllib.load(f)["workspace"]["package"]["version"]
    assert walink_ffi.version() == expected
