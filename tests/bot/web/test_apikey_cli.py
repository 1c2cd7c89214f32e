"""`coach apikey create|list|revoke`, and `coach serve` serving the API when it has an HTTP port."""

from __future__ import annotations

from bot.app import configured_surfaces
from bot.config import Settings


def test_create_prints_the_key_once_list_never_shows_it_revoke_stops_it(cli):
    made = cli(["apikey", "create", "--name", "gpt", "--scope", "act"])
    assert made.exit_code == 0, made.output
    key = made.stdout.strip()
    assert key.startswith("coach_") and "shown only now" in made.stderr
    listed = cli(["apikey", "list"])
    assert listed.exit_code == 0 and "gpt" in listed.stdout and key.split("_")[1] in listed.stdout
    assert key not in listed.stdout and key.rsplit("_", 1)[1] not in listed.stdout
    assert "act" in listed.stdout and "console:local" in listed.stdout and "active" in listed.stdout
    assert cli(["apikey", "revoke", "gpt"]).exit_code == 0
    assert "revoked" in cli(["apikey", "list"]).stdout
    again = cli(["apikey", "revoke", "gpt"])
    assert again.exit_code == 2 and "revoked already" in again.stderr


def test_create_refuses_bad_input_with_one_line(cli):
    bad_tenant = cli(["apikey", "create", "--name", "x", "--tenant", "irc:1", "--user", "u"])
    assert bad_tenant.exit_code == 2 and "PLATFORM:ID" in bad_tenant.output
    no_user = cli(["apikey", "create", "--name", "x", "--tenant", "discord:1"])
    assert no_user.exit_code == 2 and "--user is required" in no_user.output
    assert cli(["apikey", "create", "--name", "ok", "--tenant", "discord:1", "--user", "42"]).exit_code == 0
    dup = cli(["apikey", "create", "--name", "ok"])
    assert dup.exit_code == 2 and "exists already" in dup.stderr and "Traceback" not in dup.output


def test_serve_runs_the_api_where_it_has_an_http_port():
    base = {"_env_file": None, "database_url": "sqlite+aiosqlite:///:memory:"}
    assert configured_surfaces(Settings(**base)) == []  # the console
    assert configured_surfaces(Settings(**base), port=8080) == ["api"]
    assert configured_surfaces(Settings(**base, coach_http_port=9000)) == ["api"]
    assert configured_surfaces(Settings(**base, coach_api=False), port=8080) == []
