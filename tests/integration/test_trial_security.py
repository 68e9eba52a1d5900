"""Trials cannot do what the statement's own roles could not, and leave nothing behind (issue 14).

The attacks are tests/trial_attacks.py, run here against the embedded
PostgreSQL 16 and 18 (tests/system/test_system_trials.py runs them on
Debian's PostgreSQL 15).  Each takes a minute at most: the worker must try
the statement, or give up on it, first.
"""

from __future__ import annotations

from typing import Any

import pytest
import trial_attacks as attacks


@pytest.fixture
def connect(server: Any) -> attacks.Connect:
    def session(user: str | None) -> Any:
        return server.connect(user=user) if user else server.connect()

    return session


@pytest.fixture
def log_tail(server: Any) -> attacks.LogTail:
    return lambda: server.log_tail(30)


@pytest.mark.parametrize("variant", attacks.LEAK_VARIANTS)
def test_no_setting_leaks_into_the_worker(connect: attacks.Connect, log_tail: attacks.LogTail, variant: str) -> None:
    attacks.settings_leak(connect, variant, log_tail)


@pytest.mark.parametrize("trusted", [False, True], ids=["untrusted", "trusted"])
def test_no_side_effect_survives_a_trial(connect: attacks.Connect, log_tail: attacks.LogTail, trusted: bool) -> None:
    attacks.side_effects(connect, trusted=trusted, log_tail=log_tail)


@pytest.mark.parametrize("trusted", [False, True], ids=["untrusted", "trusted"])
def test_a_trial_has_the_statements_session_user(connect: attacks.Connect, log_tail: attacks.LogTail,
                                                 trusted: bool) -> None:
    attacks.session_user_secret(connect, trusted=trusted, log_tail=log_tail)


def test_superusers_statements_are_not_tried(connect: attacks.Connect, log_tail: attacks.LogTail) -> None:
    attacks.superuser_statements(connect, log_tail)


def test_server_program_members_statements_are_not_tried(connect: attacks.Connect,
                                                         log_tail: attacks.LogTail) -> None:
    attacks.server_program_statements(connect, log_tail)


def test_privileged_statements_are_tried_when_allowed(connect: attacks.Connect, log_tail: attacks.LogTail) -> None:
    attacks.privileged_statements_allowed(connect, log_tail)


def test_statements_in_a_function_are_not_tried(connect: attacks.Connect, log_tail: attacks.LogTail) -> None:
    attacks.function_body_statements(connect, log_tail)


@pytest.mark.parametrize("variant", attacks.ESCAPE_VARIANTS)
def test_builtins_behind_aggregates_domains_and_functions_are_refused(connect: attacks.Connect,
                                                                      log_tail: attacks.LogTail,
                                                                      variant: str) -> None:
    attacks.builtin_escapes(connect, variant, log_tail)
