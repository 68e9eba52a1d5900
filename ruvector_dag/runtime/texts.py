"""The texts of steered queries, as pg_stat_statements shows them (constants replaced by $n).

Backends offer a query's statement when a capture rule asks for it
(``RuleFlag.WANT_TEXT``, :class:`.sampling.CaptureRules`): for a trial
(:mod:`.trials`), and for every steered query whose text the worker has not
taken yet, whether trials are on or off.  Only the normalized text is kept,
and only for steered queries: the statement itself holds users' constants.
The statement is the ``RvdStatement`` that ``pgext/src/trials.c`` copies
(``trials.h``): read here only for its current_user and its text, never run.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

#: RvdStatement's fields before ``data`` (pgext/src/trials.h): query_id, dbid, session_userid, userid,
#: nsettings, nparams, len; native byte order and sizes, no padding (tests/unit/test_texts.py reads the header).
STATEMENT_HEADER = struct.Struct("=QIIIiii")
#: ... of which the current_user of the execution (pg_stat_statements' userid) and the payload's length.
USERID_FIELD = 3
LEN_FIELD = 6


def statement_text(statement: bytes) -> tuple[int, str] | None:
    """(userid, text) of an offered statement, or None if it is not one (too short, inconsistent).

    ``data`` starts with the search_path and the text, each NUL-terminated;
    the text is in the database's encoding (UTF-8 is the usual one: any other
    byte becomes U+FFFD, which only a constant or an identifier can hold).
    """
    if len(statement) < STATEMENT_HEADER.size:
        return None
    header = STATEMENT_HEADER.unpack_from(statement)
    data = statement[STATEMENT_HEADER.size:STATEMENT_HEADER.size + max(header[LEN_FIELD], 0)]
    parts = data.split(b"\0", 2)
    if len(parts) < 3:
        return None
    return int(header[USERID_FIELD]), parts[1].decode("utf-8", errors="replace")


def normalize(text: str) -> str | None:
    """The text with its constants replaced by $n, as pg_stat_statements shows it (pglast, the
    parser of PostgreSQL's own source); None when it does not parse (syntax newer than pglast's
    parser) or pglast is missing: a wrong text would be worse than none, and a guess could leave a
    user's constant in place.  Nothing is logged: the text may hold constants."""
    try:
        from pglast.parser import normalize as pg_normalize
    except ImportError:  # an engine installed before pglast was a dependency
        return None
    try:
        normalized: str = pg_normalize(text)
    except Exception:  # pglast.parser.ParseError, and anything its C parser raises
        return None
    return normalized.strip()


def take_texts(learners: Iterable[Any], offered: Iterable[tuple[int, bytes]]) -> set[int]:
    """Keep the normalized text of each offered statement whose query a learner wants it for
    (``TableLearner``: ``relid``, ``steering``); return the relids of the learners changed.

    A statement that cannot be read counts as taken too (with no text): it
    is not asked for again at every execution.
    """
    changed: set[int] = set()
    offered = list(offered)
    if not offered:
        return changed
    wants = [(learner, learner.steering.texts_wanted()) for learner in learners]
    for qid, statement in offered:
        wanting = [learner for learner, wanted in wants if qid in wanted]
        if not wanting:
            continue
        read = statement_text(bytes(statement))
        userid, text = (read[0], normalize(read[1])) if read is not None else (0, None)
        for learner in wanting:
            if learner.steering.describe(qid, text, userid):
                changed.add(learner.relid)
    return changed


def texts_wanted(learners: Iterable[Any]) -> set[int]:
    """Query ids whose statement the worker asks for, to keep their text."""
    wanted: set[int] = set()
    for learner in learners:
        wanted |= learner.steering.texts_wanted()
    return wanted
