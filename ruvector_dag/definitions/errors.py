"""Exceptions that carry a PostgreSQL SQLSTATE.

The C bridge (``pgext/src/py_elog.c``) turns any exception that escapes the
engine into an ``ereport``: it reads the ``sqlstate`` attribute of the
exception class (five characters; the attribute's name is
``seam.SQLSTATE_ATTRIBUTE``, which a unit test checks against the classes
here) and uses ``str(exc)`` as the message.  An
exception without that attribute is reported as ``XX000`` (internal_error)
with the Python exception type in the DETAIL line.
"""

from __future__ import annotations


class RuvectorError(Exception):
    """Base class of every error the engine reports to SQL."""

    sqlstate = "XX000"  # internal_error


class InvalidParameter(RuvectorError, ValueError):
    """An argument has a wrong value, shape or length (22023)."""

    sqlstate = "22023"  # invalid_parameter_value


class NullValueNotAllowed(InvalidParameter):
    """A required argument, or an element of an array argument, is NULL (22004)."""

    sqlstate = "22004"  # null_value_not_allowed


class ProgramLimitExceeded(InvalidParameter):
    """An input is larger than the documented limits (54000)."""

    sqlstate = "54000"  # program_limit_exceeded


class NumericalFailure(RuvectorError, ArithmeticError):
    """A kernel produced non-finite output from finite input.

    SQL entry points catch this and fall back to a documented result with a
    WARNING; it never reaches a user as an ERROR.
    """

    sqlstate = "22003"  # numeric_value_out_of_range


class NotEnrolled(RuvectorError, LookupError):
    """The table is not enrolled (or its enrollment is not committed yet)."""

    sqlstate = "55000"  # object_not_in_prerequisite_state
