"""The texts of steered queries, as pg_stat_statements shows them (constants replaced by $n).

Backends offer a query's statement when a capture rule asks for it
(``RuleFlag.WANT_TEXT``, :class:`.sampling.CaptureRules`): for a trial
(:mod:`.trials`), and for every steered query whose text the worker has not
taken yet, whether trials are on or off.  Only the normalized text is kept,
and only for steered queries: the statement itself holds users' constants.
The statement is the ``RvdStatement`` that ``pgext/src/trials.c`` copies
(``trials.h``), opaque here: ``_ruvector_pg.statement_text`` reads its role
and normalizes its text with PostgreSQL's own scanner (``normalize.c``),
in the worker, never in a user's query.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..definitions.seam import PgModule


def take_texts(pg: PgModule, learners: Iterable[Any], offered: Iterable[tuple[int, bytes]]) -> set[int]:
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
        read = pg.statement_text(bytes(statement))
        userid, text = read if read is not None else (0, None)
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
