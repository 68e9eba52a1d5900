"""The trial attacks of tests/trial_attacks.py on Debian's PostgreSQL 15 (issue 14).

Run by `.ci/debian-pg15.sh` with RUVECTOR_SYSTEM_DSN set (a superuser; the
cluster trusts local connections, so the attacker's role logs in without a
password); skipped otherwise.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import trial_attacks as attacks

DSN = os.environ.get("RUVECTOR_SYSTEM_DSN")
pytestmark = pytest.mark.skipif(not DSN, reason="needs a system server (.ci/debian-pg15.sh)")


def connect(user: str | None) -> Any:
    import psycopg

    assert DSN
    return psycopg.connect(DSN, autocommit=True, **({"user": user} if user else {}))


@pytest.mark.parametrize("variant", attacks.LEAK_VARIANTS)
def test_no_setting_leaks_into_the_worker(variant: str) -> None:
    attacks.settings_leak(connect, variant)


@pytest.mark.parametrize("trusted", [False, True], ids=["untrusted", "trusted"])
def test_no_side_effect_survives_a_trial(trusted: bool) -> None:
    attacks.side_effects(connect, trusted=trusted)


@pytest.mark.parametrize("trusted", [False, True], ids=["untrusted", "trusted"])
def test_a_trial_has_the_statements_session_user(trusted: bool) -> None:
    attacks.session_user_secret(connect, trusted=trusted)


def test_superusers_statements_are_not_tried() -> None:
    attacks.superuser_statements(connect)


def test_server_program_members_statements_are_not_tried() -> None:
    attacks.server_program_statements(connect)


def test_privileged_statements_are_tried_when_allowed() -> None:
    attacks.privileged_statements_allowed(connect)


def test_statements_in_a_function_are_not_tried() -> None:
    attacks.function_body_statements(connect)


def test_trials_are_not_counted_by_pg_stat_statements() -> None:
    with connect(None) as c:
        if "pg_stat_statements" not in c.execute("SHOW shared_preload_libraries").fetchone()[0]:
            pytest.skip("pg_stat_statements is not preloaded")
    attacks.trials_not_counted(connect)


@pytest.mark.parametrize("variant", attacks.ESCAPE_VARIANTS)
def test_builtins_behind_aggregates_domains_and_functions_are_refused(variant: str) -> None:
    attacks.builtin_escapes(connect, variant)
