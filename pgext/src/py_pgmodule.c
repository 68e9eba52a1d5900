/*-------------------------------------------------------------------------
 *
 * py_pgmodule.c
 *		The module _ruvector_pg (RVD_PG_MODULE) given to the worker's Python.
 *
 * The engine (the Python Worker, py_worker.c) runs only in the background
 * worker.  It reaches PostgreSQL through this one small built-in module; its
 * functions are the X-macro RVD_PG_FUNCTIONS of seam_defs.h (generated from
 * the Python side's seam definitions), each implemented here as
 * rvd_pg_<name>:
 *
 *	read_ring(max) -> bytes		consume up to max trajectory records of this
 *								database (raw RvdTrajectory structs)
 *	execute(sql, params) -> rows	run one SQL statement through SPI in a
 *								subtransaction; params and results as text
 *	publish(relid, ...)			publish a table's learning counters to
 *								shared memory (ruvector_dag_learning_stats)
 *	forget(relid)				drop a table's published counters
 *	skip_ring(max, keep)		consume up to max records unread (over the learning
 *								budget), stopping before one whose query id is in
 *								keep (bytes of uint64); returns their relids (bytes
 *								of uint32)
 *	setting(name)				a setting's current value (no SQL)
 *	generation()				the enrollment registry's generation
 *	set_decision(relid, query_id, arm)	a learned steering decision (directives.c)
 *	set_capture_rules(query_ids, fractions, flags)	per-query capture fractions
 *								(bytes of uint64, of float64, of uint8 RVD_RULE_*)
 *	take_statements() -> list	the statements backends offered for trials
 *	statement_text(statement) -> (userid, str | None) | None	its role and normalized text
 *								(trials.c), each (query_id, statement bytes)
 *	trial(statement, arm, timeout_ms)	run a taken statement once under arm
 *								(trials.c): its microseconds, or None if
 *								it did not finish in time
 *	set_sample_fraction(f)		the fraction of other statements captured
 *	log(message)				a LOG line in the server log
 *
 * Every callback catches PostgreSQL ERRORs itself (PG_TRY) and hands them
 * to Python as exceptions, so no longjmp ever crosses a Python frame, and
 * a failing statement rolls back only its own subtransaction, as in
 * PL/Python (execute: as plpy_spi.c).  The worker loop (worker.c) calls
 * into the engine through py_worker.c, inside a transaction it owns.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "storage/sinval.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/sinval.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "directives.h"
#include "learn_stats.h"
#include "rvd_python.h"
#include "py_elog.h"
#include "py_pgmodule.h"
#include "registry.h"
#include "ring.h"
#include "seam_defs.h"
#include "steering_defs.h"
#include "normalize.h"
#include "trials.h"

#define RVD_N_ARMS_FOR_PY RVD_N_ARMS

/* Every function of RVD_PG_FUNCTIONS, declared (and so required) here. */
#define RVD_PG_FUNCTION(name, flags, doc) static PyObject *rvd_pg_##name(PyObject *self, PyObject *args);
RVD_PG_FUNCTIONS
#undef RVD_PG_FUNCTION

/* Most records one read_ring call may return (bounds its buffer). */
#define RVD_READ_RING_MAX 4096

/* _ruvector_pg.Error: a PostgreSQL error, with .sqlstate */
static PyObject *rvd_pg_error = NULL;

/*
 * Inside a PG_CATCH: take the error being thrown (back in the callback's
 * memory context) and clear it, so it can become a Python exception.
 */
static ErrorData *
rvd_take_pg_error(MemoryContext oldcontext)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(oldcontext);
	edata = CopyErrorData();
	FlushErrorState();
	return edata;
}

/* Set the Python exception for a caught PostgreSQL error. */
static void
rvd_raise_pg_error(ErrorData *edata)
{
	/* (in the server's encoding: bytes that are not UTF-8 become U+FFFD) */
	const char *message = edata->message ? edata->message : "error";
	PyObject   *text = PyUnicode_DecodeUTF8(message, (Py_ssize_t) strlen(message), "replace");
	PyObject   *exc = text != NULL ? PyObject_CallFunctionObjArgs(rvd_pg_error, text, NULL) : NULL;

	Py_XDECREF(text);

	if (exc != NULL)
	{
		PyObject   *code = PyUnicode_FromString(unpack_sql_state(edata->sqlerrcode));

		if (code != NULL)
		{
			PyObject_SetAttrString(exc, RVD_PY_SQLSTATE_ATTRIBUTE, code);
			Py_DECREF(code);
		}
		PyErr_SetObject(rvd_pg_error, exc);
		Py_DECREF(exc);
	}
}

static PyObject *
rvd_pg_read_ring(PyObject *self, PyObject *args)
{
	int			max;
	RvdTrajectory *buf = NULL;
	int			n = 0;
	volatile bool failed = false;
	MemoryContext oldcontext = CurrentMemoryContext;
	ErrorData  *edata = NULL;
	PyObject   *result;

	if (!PyArg_ParseTuple(args, "i", &max))
		return NULL;
	if (max < 1 || max > RVD_READ_RING_MAX)
	{
		PyErr_Format(PyExc_ValueError, "read_ring: max must be in [1, %d]", RVD_READ_RING_MAX);
		return NULL;
	}
	PG_TRY();
	{
		buf = palloc0(sizeof(RvdTrajectory) * max);
		n = rvd_ring_read(buf, max, true, MyDatabaseId);
	}
	PG_CATCH();
	{
		edata = rvd_take_pg_error(oldcontext);
		failed = true;
	}
	PG_END_TRY();
	if (failed)
	{
		rvd_raise_pg_error(edata);
		return NULL;
	}
	result = PyBytes_FromStringAndSize((const char *) buf, (Py_ssize_t) sizeof(RvdTrajectory) * n);
	pfree(buf);
	return result;
}

static PyObject *
rvd_pg_skip_ring(PyObject *self, PyObject *args)
{
	int			max;
	Py_buffer	keep;
	Oid		   *relids = NULL;
	int			n = 0;
	volatile bool failed = false;
	MemoryContext oldcontext = CurrentMemoryContext;
	ErrorData  *edata = NULL;
	PyObject   *result;

	if (!PyArg_ParseTuple(args, "iy*", &max, &keep))
		return NULL;
	if (max < 1 || max > RVD_READ_RING_MAX || keep.len % sizeof(uint64) != 0)
	{
		PyBuffer_Release(&keep);
		PyErr_Format(PyExc_ValueError, "skip_ring: max must be in [1, %d] and keep whole uint64s",
					 RVD_READ_RING_MAX);
		return NULL;
	}
	PG_TRY();
	{
		uint64	   *keepv = palloc(keep.len + sizeof(uint64));	/* aligned copy */

		memcpy(keepv, keep.buf, keep.len);
		relids = palloc(sizeof(Oid) * max);
		n = rvd_ring_skip(relids, max, MyDatabaseId, keepv, (int) (keep.len / sizeof(uint64)));
		pfree(keepv);
	}
	PG_CATCH();
	{
		edata = rvd_take_pg_error(oldcontext);
		failed = true;
	}
	PG_END_TRY();
	PyBuffer_Release(&keep);
	if (failed)
	{
		rvd_raise_pg_error(edata);
		return NULL;
	}
	result = PyBytes_FromStringAndSize((const char *) relids, (Py_ssize_t) sizeof(Oid) * n);
	pfree(relids);
	return result;
}

/*
 * A value from the server, in the database's encoding, as UTF-8 for a
 * Python str (palloc'd, or s itself when no conversion is needed).  In a
 * UTF8 database a no-op; in LATIN1, WIN1252, EUC_JP... a conversion, which
 * every server encoding has.  SQL_ASCII declares no encoding: its bytes
 * are passed as they are, and rvd_utf8_to_py replaces those that are not
 * UTF-8.  May ERROR: only inside PG_TRY, before any Python object exists.
 */
static char *
rvd_server_to_utf8(const char *s)
{
	if (GetDatabaseEncoding() == PG_SQL_ASCII)
		return unconstify(char *, s);
	return pg_server_to_any(s, (int) strlen(s), PG_UTF8);
}

/*
 * UTF-8 from rvd_server_to_utf8 as a str.  Valid UTF-8 except in an
 * SQL_ASCII database, where bytes that are not become U+FFFD: the worker
 * reads names (labels it writes back, execute() converts them to the
 * server's encoding) and JSON, and a name with U+FFFD still goes back,
 * where lone surrogates (surrogateescape) would not.
 */
static PyObject *
rvd_utf8_to_py(const char *s)
{
	return PyUnicode_DecodeUTF8(s, (Py_ssize_t) strlen(s), "replace");
}

/*
 * Rows of the last SPI result as a list of tuples of str/None (NULL with a
 * Python exception set).  Two passes: the values are first read and
 * converted to UTF-8 (which may ERROR: the caller's PG_TRY catches it, and
 * no Python object is left behind), then turned into Python objects (which
 * raise no ERROR).
 */
static PyObject *
rvd_spi_rows(void)
{
	PyObject   *rows;
	TupleDesc	desc;
	char	  **texts;
	uint64		nrows;
	uint64		i;
	int			natts;
	int			j;

	if (SPI_tuptable == NULL)
		return PyList_New(0);
	desc = SPI_tuptable->tupdesc;
	natts = desc->natts;
	nrows = SPI_processed;
	texts = palloc0(sizeof(char *) * Max(nrows * natts, 1));
	for (i = 0; i < nrows; i++)
		for (j = 0; j < natts; j++)
		{
			char	   *value = SPI_getvalue(SPI_tuptable->vals[i], desc, j + 1);

			texts[i * natts + j] = value ? rvd_server_to_utf8(value) : NULL;
		}

	rows = PyList_New(0);
	for (i = 0; rows != NULL && i < nrows; i++)
	{
		PyObject   *row = PyTuple_New(natts);

		for (j = 0; row != NULL && j < natts; j++)
		{
			const char *text = texts[i * natts + j];
			PyObject   *item = text ? rvd_utf8_to_py(text) : (Py_INCREF(Py_None), Py_None);

			if (item == NULL)
				Py_CLEAR(row);
			else
				PyTuple_SET_ITEM(row, j, item);
		}
		if (row == NULL || PyList_Append(rows, row) < 0)
			Py_CLEAR(rows);
		Py_XDECREF(row);
	}
	pfree(texts);
	return rows;
}

/*
 * execute(sql, params=()) -> list of rows.  Every parameter is passed as
 * text ($n::type in the statement converts it); None is NULL.  Everything
 * that can raise a PostgreSQL ERROR (allocations included) runs inside
 * PG_TRY.
 */
static PyObject *
rvd_pg_execute(PyObject *self, PyObject *args)
{
	const char *sql;
	PyObject   *params = NULL;
	Py_ssize_t	nargs = 0;
	const char **texts = NULL;
	Py_ssize_t	i;
	volatile bool failed = false;
	volatile bool in_subxact = false;
	PyObject   *volatile rows = NULL;
	MemoryContext oldcontext = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	ErrorData  *edata = NULL;

	if (!PyArg_ParseTuple(args, "s|O", &sql, &params))
		return NULL;
	if (params != NULL && params != Py_None)
	{
		if (!PyTuple_Check(params))
		{
			PyErr_SetString(PyExc_TypeError, "execute: params must be a tuple");
			return NULL;
		}
		nargs = PyTuple_GET_SIZE(params);
	}
	/* The parameters' UTF-8 texts (owned by their str objects), before PostgreSQL's error domain. */
	if (nargs > 0)
	{
		texts = PyMem_Calloc(nargs, sizeof(char *));
		if (texts == NULL)
			return PyErr_NoMemory();
		for (i = 0; i < nargs; i++)
		{
			PyObject   *item = PyTuple_GET_ITEM(params, i);

			if (item == Py_None)
				continue;
			texts[i] = PyUnicode_Check(item) ? PyUnicode_AsUTF8(item) : NULL;
			if (texts[i] == NULL)
			{
				if (!PyErr_Occurred())
					PyErr_Format(PyExc_TypeError, "execute: parameter %zd must be str or None", i + 1);
				PyMem_Free(texts);
				return NULL;
			}
		}
	}

	PG_TRY();
	{
		Oid		   *types = NULL;
		Datum	   *values = NULL;
		char	   *nulls = NULL;

		BeginInternalSubTransaction(NULL);
		in_subxact = true;
		MemoryContextSwitchTo(oldcontext);

		/*
		 * A snapshot for this statement only (the worker's transactions hold
		 * none between statements, see rvd_in_transaction in worker.c).
		 */
		PushActiveSnapshot(GetTransactionSnapshot());
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (nargs > 0)
		{
			types = palloc(sizeof(Oid) * nargs);
			values = palloc(sizeof(Datum) * nargs);
			nulls = palloc(nargs);
			for (i = 0; i < nargs; i++)
			{
				types[i] = TEXTOID;
				/* (in the server's encoding: the worker's SQL is ASCII, its values are names and JSON) */
				values[i] = texts[i] == NULL ? (Datum) 0 :
					CStringGetTextDatum(pg_any_to_server(texts[i], (int) strlen(texts[i]), PG_UTF8));
				nulls[i] = texts[i] == NULL ? 'n' : ' ';
			}
		}
		SPI_execute_with_args(pg_any_to_server(sql, (int) strlen(sql), PG_UTF8), (int) nargs, types, values,
							  nulls, false, 0);
		rows = rvd_spi_rows();
		SPI_finish();
		PopActiveSnapshot();
		ReleaseCurrentSubTransaction();
		in_subxact = false;
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		edata = rvd_take_pg_error(oldcontext);
		if (in_subxact)
			RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
		failed = true;
	}
	PG_END_TRY();
	PyMem_Free(texts);
	if (failed)
	{
		Py_XDECREF(rows);
		rvd_raise_pg_error(edata);
		return NULL;
	}
	return rows;
}

/*
 * publish(relid, consumed, queries_processed, learned, pattern_hits,
 *		   avg_latency_us, prediction_error, patterns_stored, ewc_tasks,
 *		   background_cycles, last_cycle_ms, last_cycle_at_unix_us,
 *		   attention_type)
 */
static PyObject *
rvd_pg_publish(PyObject *self, PyObject *args)
{
	unsigned int relid;
	unsigned long long consumed,
				processed,
				learned,
				hits,
				cycles;
	double		latency,
				prederr,
				cycle_ms;
	int			patterns,
				tasks;
	long long	cycle_at;
	const char *attention;
	RvdLearnStats s;

	if (!PyArg_ParseTuple(args, "IKKKKddiiKdLs", &relid, &consumed, &processed, &learned, &hits,
						  &latency, &prederr, &patterns, &tasks, &cycles, &cycle_ms, &cycle_at, &attention))
		return NULL;

	memset(&s, 0, sizeof(s));
	s.dbid = MyDatabaseId;
	s.relid = (Oid) relid;
	s.consumed = consumed;
	s.queries_processed = processed;
	s.learned = learned;
	s.pattern_hits = hits;
	s.avg_latency_us = latency;
	s.prediction_error = prederr;
	s.patterns_stored = patterns;
	s.ewc_tasks = tasks;
	s.background_cycles = cycles;
	s.last_cycle_ms = cycle_ms;
	/* Unix microseconds -> TimestampTz; 0 means never. */
	s.last_cycle_at = cycle_at == 0 ? 0 :
		(TimestampTz) cycle_at - ((TimestampTz) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY);
	strlcpy(s.attention_type, attention, sizeof(s.attention_type));
	/* LWLock waits cannot raise ERROR; the lock is never held for long. */
	if (!rvd_learn_stats_publish(&s))
	{
		PyErr_SetString(PyExc_RuntimeError, "publish: no free learning-statistics slot");
		return NULL;
	}
	Py_RETURN_NONE;
}

static PyObject *
rvd_pg_forget(PyObject *self, PyObject *args)
{
	unsigned int relid;

	if (!PyArg_ParseTuple(args, "I", &relid))
		return NULL;
	rvd_learn_stats_forget((Oid) relid);
	Py_RETURN_NONE;
}

/*
 * set_decision(relid, query_id, arm): a learned steering decision (arm 0
 * removes it).  Plans cached by any backend for statements on relid are
 * invalidated when the worker's transaction commits, so prepared statements
 * are re-planned under the new decision (and an executed cached plan was
 * always made under the decision in force, which capture records).
 */
/*
 * Make the backends re-plan their cached plans of relid's queries.  On a
 * primary, a relcache invalidation sent at commit.  A hot standby cannot
 * send one that way (a transaction without an xid WAL-logs its
 * invalidations at commit, and recovery writes no WAL): the message is
 * broadcast at once instead, as the startup process broadcasts those it
 * replays.
 */
static void
rvd_invalidate_plans(Oid relid)
{
	if (RecoveryInProgress())
	{
		SharedInvalidationMessage msg;

		memset(&msg, 0, sizeof(msg));
		msg.rc.id = SHAREDINVALRELCACHE_ID;
		msg.rc.dbId = MyDatabaseId;
		msg.rc.relId = relid;
		SendSharedInvalidMessages(&msg, 1);
	}
	else
		CacheInvalidateRelcacheByRelid(relid);
}

static PyObject *
rvd_pg_set_decision(PyObject *self, PyObject *args)
{
	unsigned int relid;
	unsigned long long query_id;
	int			arm;
	volatile bool failed = false;
	MemoryContext oldcontext = CurrentMemoryContext;
	ErrorData  *edata = NULL;

	if (!PyArg_ParseTuple(args, "IKi", &relid, &query_id, &arm))
		return NULL;
	if (arm < 0 || arm >= RVD_N_ARMS_FOR_PY)
	{
		PyErr_Format(PyExc_ValueError, "set_decision: arm must be in [0, %d)", RVD_N_ARMS_FOR_PY);
		return NULL;
	}
	PG_TRY();
	{
		(void) rvd_set_decision_for((Oid) relid, (uint64) query_id, arm, RVD_DECISION_LEARNED);
		rvd_invalidate_plans((Oid) relid);
	}
	PG_CATCH();
	{
		edata = rvd_take_pg_error(oldcontext);
		failed = true;
	}
	PG_END_TRY();
	if (failed)
	{
		rvd_raise_pg_error(edata);
		return NULL;
	}
	Py_RETURN_NONE;
}

/*
 * set_capture_rules(query_ids, fractions, flags): replace the per-query
 * capture rules (bytes of uint64, of float64 and of uint8: one fraction in
 * [0, 1] and one set of RVD_RULE_* flags per id).
 */
static PyObject *
rvd_pg_set_capture_rules(PyObject *self, PyObject *args)
{
	Py_buffer	ids;
	Py_buffer	fractions;
	Py_buffer	flags;
	RvdCaptureRule *rules;
	int			n;
	int			i;

	if (!PyArg_ParseTuple(args, "y*y*y*", &ids, &fractions, &flags))
		return NULL;
	n = (int) (ids.len / sizeof(uint64));
	if (fractions.len != (Py_ssize_t) (n * sizeof(double)) || flags.len != (Py_ssize_t) n)
	{
		PyBuffer_Release(&ids);
		PyBuffer_Release(&fractions);
		PyBuffer_Release(&flags);
		PyErr_SetString(PyExc_ValueError,
						"set_capture_rules: one float64 fraction and one uint8 flag per uint64 query id");
		return NULL;
	}
	n = Min(n, RVD_MAX_CAPTURE_RULES);
	rules = (RvdCaptureRule *) PyMem_Malloc(sizeof(RvdCaptureRule) * Max(n, 1));
	if (rules == NULL)
	{
		PyBuffer_Release(&ids);
		PyBuffer_Release(&fractions);
		PyBuffer_Release(&flags);
		return PyErr_NoMemory();
	}
	for (i = 0; i < n; i++)
	{
		double		f = ((const double *) fractions.buf)[i];

		rules[i].query_id = ((const uint64 *) ids.buf)[i];
		rules[i].threshold = rvd_fraction_threshold(f >= 0.0 ? f : 0.0);
		rules[i].flags = ((const uint8 *) flags.buf)[i];
	}
	rvd_set_capture_rules(rules, n);
	PyMem_Free(rules);
	PyBuffer_Release(&ids);
	PyBuffer_Release(&fractions);
	PyBuffer_Release(&flags);
	Py_RETURN_NONE;
}

/*
 * take_statements(): the statements offered since the last call (their
 * slots are freed), each (query_id, statement): the statement is opaque
 * bytes for trial(), which checks them.
 */
static PyObject *
rvd_pg_take_statements(PyObject *self, PyObject *args)
{
	RvdStatement *volatile taken = NULL;
	volatile int n = 0;
	volatile bool failed = false;
	MemoryContext oldcontext = CurrentMemoryContext;
	ErrorData  *edata = NULL;
	PyObject   *list;
	int			i;

	PG_TRY();
	{
		taken = palloc(sizeof(RvdStatement) * RVD_MAX_STATEMENTS);
		n = rvd_statements_take(taken, RVD_MAX_STATEMENTS);
	}
	PG_CATCH();
	{
		edata = rvd_take_pg_error(oldcontext);
		failed = true;
	}
	PG_END_TRY();
	if (failed)
	{
		rvd_raise_pg_error(edata);
		return NULL;
	}
	list = PyList_New(0);
	for (i = 0; list != NULL && i < n; i++)
	{
		RvdStatement *s = &taken[i];
		PyObject   *item = Py_BuildValue("(Ky#)", (unsigned long long) s->query_id, (const char *) s,
										 (Py_ssize_t) (offsetof(RvdStatement, data) + s->len));

		if (item == NULL || PyList_Append(list, item) != 0)
		{
			Py_XDECREF(item);
			Py_CLEAR(list);
			break;
		}
		Py_DECREF(item);
	}
	pfree(taken);
	return list;
}

/*
 * statement_text(statement): (userid, text) of a statement taken by
 * take_statements(): the role it ran as and its text with the constants
 * replaced by $n (normalize.c), text None if the scanner refused it; None
 * if the bytes are not a taken statement.  Only the normalized text
 * leaves: the statement holds users' constants.
 */
static PyObject *
rvd_pg_statement_text(PyObject *self, PyObject *args)
{
	Py_buffer	bytes;
	Oid			userid = InvalidOid;
	const char *text = NULL;
	bool		scs = true;
	int			bsq = 0;
	char	   *volatile normalized = NULL;
	char	   *volatile utf8 = NULL;
	MemoryContext oldcontext = CurrentMemoryContext;
	PyObject   *result;

	if (!PyArg_ParseTuple(args, "y*", &bytes))
		return NULL;
	if (bytes.len > (Py_ssize_t) sizeof(RvdStatement) ||
		!rvd_statement_describe((const RvdStatement *) bytes.buf, (Size) bytes.len, &userid, &text, &scs, &bsq))
	{
		PyBuffer_Release(&bytes);
		Py_RETURN_NONE;
	}
	PG_TRY();
	{
		normalized = rvd_normalize_query(text, scs, bsq);
		utf8 = rvd_server_to_utf8(normalized);
	}
	PG_CATCH();
	{
		/* a text the scanner refuses (or that does not convert) has no normalized form: no text */
		MemoryContextSwitchTo(oldcontext);
		FlushErrorState();
		utf8 = NULL;
	}
	PG_END_TRY();
	PyBuffer_Release(&bytes);
	result = utf8 != NULL ? Py_BuildValue("(IN)", (unsigned int) userid, rvd_utf8_to_py(utf8))
		: Py_BuildValue("(IO)", (unsigned int) userid, Py_None);
	if (utf8 != NULL && utf8 != normalized)
		pfree(utf8);
	if (normalized != NULL)
		pfree(normalized);
	return result;
}

/*
 * trial(statement, arm, timeout_ms): run a statement taken by
 * take_statements() once under arm (trials.c, rvd_trial_run); its
 * elapsed microseconds, or None when it was cancelled at timeout_ms.
 */
static PyObject *
rvd_pg_trial(PyObject *self, PyObject *args)
{
	Py_buffer	bytes;
	int			arm;
	int			timeout_ms;
	volatile double us = -1;
	volatile bool failed = false;
	MemoryContext oldcontext = CurrentMemoryContext;
	ErrorData  *edata = NULL;
	RvdStatement *volatile stmt = NULL;

	if (!PyArg_ParseTuple(args, "y*ii", &bytes, &arm, &timeout_ms))
		return NULL;
	if (arm < 0 || arm >= RVD_N_ARMS_FOR_PY || timeout_ms < 1 ||
		bytes.len < (Py_ssize_t) offsetof(RvdStatement, data) || bytes.len > (Py_ssize_t) sizeof(RvdStatement) ||
		bytes.len != (Py_ssize_t) offsetof(RvdStatement, data) + ((const RvdStatement *) bytes.buf)->len)
	{
		PyBuffer_Release(&bytes);
		PyErr_SetString(PyExc_ValueError, "trial: arm out of range, timeout_ms < 1 or not a taken statement");
		return NULL;
	}
	PG_TRY();
	{
		stmt = palloc(sizeof(RvdStatement));
		memcpy(stmt, bytes.buf, bytes.len);
		us = rvd_trial_run(stmt, arm, timeout_ms);
	}
	PG_CATCH();
	{
		edata = rvd_take_pg_error(oldcontext);
		failed = true;
	}
	PG_END_TRY();
	PyBuffer_Release(&bytes);
	if (stmt != NULL)
		pfree(stmt);
	if (failed)
	{
		rvd_raise_pg_error(edata);
		return NULL;
	}
	if (us < 0)
		Py_RETURN_NONE;
	return PyFloat_FromDouble(us);
}

/* set_sample_fraction(f): capture keeps this fraction of the statements not always kept. */
static PyObject *
rvd_pg_set_sample_fraction(PyObject *self, PyObject *args)
{
	double		f;

	if (!PyArg_ParseTuple(args, "d", &f))
		return NULL;
	if (!(f >= 0.0 && f <= 1.0))
	{
		PyErr_Format(PyExc_ValueError, "set_sample_fraction: %g is not in [0, 1]", f);
		return NULL;
	}
	rvd_set_sample_threshold(rvd_fraction_threshold(f));
	Py_RETURN_NONE;
}

/* setting(name): the current value of a setting (as SHOW shows it), or None. */
static PyObject *
rvd_pg_setting(PyObject *self, PyObject *args)
{
	const char *name;
	const char *value;

	if (!PyArg_ParseTuple(args, "s", &name))
		return NULL;
	value = GetConfigOption(name, true, false);	/* missing_ok: no ERROR */
	if (value == NULL)
		Py_RETURN_NONE;
	return rvd_utf8_to_py(value);	/* (a role name in the server's encoding: U+FFFD if not UTF-8) */
}

/* generation(): bumped by every enrollment change (the registry's generation). */
static PyObject *
rvd_pg_generation(PyObject *self, PyObject *args)
{
	return PyLong_FromUnsignedLong(rvd_registry_generation());
}

static PyObject *
rvd_pg_log(PyObject *self, PyObject *args)
{
	const char *message;

	if (!PyArg_ParseTuple(args, "s", &message))
		return NULL;
	/* LOG never longjmps. */
	elog(LOG, "ruvector_dag worker: %s", message);
	Py_RETURN_NONE;
}

/* The method table, from the X-macro of seam_defs.h. */
#define RVD_PG_FUNCTION(name, flags, doc) {#name, (PyCFunction) rvd_pg_##name, flags, doc},
static PyMethodDef rvd_pg_methods[] = {
	RVD_PG_FUNCTIONS
	{NULL, NULL, 0, NULL}
};
#undef RVD_PG_FUNCTION

static struct PyModuleDef rvd_pg_module = {
	PyModuleDef_HEAD_INIT, RVD_PG_MODULE, "PostgreSQL as seen by the ruvector_dag worker.", -1, rvd_pg_methods
};

/*
 * Create _ruvector_pg (RVD_PG_MODULE) and put it in sys.modules (works whether or not the
 * interpreter was started by PL/Python before us).
 */
void
rvd_install_pg_module(void)
{
	PyObject   *module = PyModule_Create(&rvd_pg_module);

	if (module == NULL)
		rvd_py_report(ERROR, "could not create the " RVD_PG_MODULE " module");
	rvd_pg_error = PyErr_NewException(RVD_PG_MODULE "." RVD_PG_ERROR, NULL, NULL);
	if (rvd_pg_error == NULL ||
		PyModule_AddObject(module, RVD_PG_ERROR, (Py_INCREF(rvd_pg_error), rvd_pg_error)) < 0 ||
		PyModule_AddIntConstant(module, RVD_PG_READ_RING_MAX, RVD_READ_RING_MAX) < 0 ||
		PyModule_AddIntConstant(module, RVD_PG_RECORD_SIZE, (long) sizeof(RvdTrajectory)) < 0 ||
		PyDict_SetItemString(PyImport_GetModuleDict(), RVD_PG_MODULE, module) < 0)
	{
		Py_DECREF(module);
		rvd_py_report(ERROR, "could not install the " RVD_PG_MODULE " module");
	}
	Py_DECREF(module);
}

