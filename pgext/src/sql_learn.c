/*-------------------------------------------------------------------------
 *
 * sql_learn.c
 *		SQL entry points served by the background worker.
 *
 * What the engine learned lives in the worker process.  Sessions reach it
 * two ways, neither of which runs Python in the session:
 *
 *	ruvector_dag._worker_request(kind, relid, int_arg, real_arg) -> jsonb
 *		posts a request (forced learning cycle, pattern extraction,
 *		consolidation) in shared memory, wakes the worker and waits on a
 *		condition variable for its answer.  One request is served at a
 *		time; others wait their turn.  The wait can be cancelled, and the
 *		worker then discards the answer.  The spec's functions
 *		(ruvector_dag_learn, ...) are SQL wrappers around this one.
 *
 *	ruvector_dag._learning_counters(relid) -> record
 *		the counters the worker publishes after each batch it learns from.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "commands/dbcommands.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "ruvector_dag.h"

PG_FUNCTION_INFO_V1(rvd_worker_request);
PG_FUNCTION_INFO_V1(rvd_learning_counters);

/* How long a session waits for a missing worker to (re)appear. */
#define RVD_WORKER_ABSENT_MS 30000L
/* Longest a request may take before the session gives up. */
#define RVD_REQUEST_TIMEOUT_MS 600000L

/* The worker serves one database; requests from another are refused early. */
static void
rvd_check_worker_database(void)
{
	char	   *db = get_database_name(MyDatabaseId);

	if (db == NULL || strcmp(db, rvd_dag_worker_database) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the ruvector_dag background worker serves database \"%s\", not \"%s\"",
						rvd_dag_worker_database, db ? db : "?"),
				 errhint("Set ruvector.dag_worker_database in postgresql.conf and restart the server.")));
}

/* Give up on our request: the worker frees the slot when it is done. */
static void
rvd_abandon_request(uint64 ticket)
{
	RvdRequest *r = &rvd_shared->request;

	SpinLockAcquire(&r->mutex);
	if (r->ticket == ticket)
	{
		if (r->state == RVD_REQ_DONE)
			r->state = RVD_REQ_FREE;
		else if (r->state == RVD_REQ_PENDING)
			r->state = RVD_REQ_FREE;	/* never started: withdraw it */
		else if (r->state == RVD_REQ_RUNNING)
			r->abandoned = true;
	}
	SpinLockRelease(&r->mutex);
	ConditionVariableBroadcast(&r->cv);
}

Datum
rvd_worker_request(PG_FUNCTION_ARGS)
{
	RvdRequest *r = &rvd_shared->request;
	text	   *kind;
	Oid			relid;
	uint64		ticket = 0;
	TimestampTz started = GetCurrentTimestamp();
	TimestampTz absent_since = 0;
	bool		failed = false;
	char		sqlstate[6];
	char	   *result = palloc(RVD_REQUEST_RESULT_LEN);

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("kind and relid must not be NULL")));
	kind = PG_GETARG_TEXT_PP(0);
	relid = PG_GETARG_OID(1);
	if (VARSIZE_ANY_EXHDR(kind) >= RVD_REQUEST_KIND_LEN)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("request kind too long")));
	rvd_check_worker_database();

	/* 1. Wait for the slot to be free, then post our request. */
	ConditionVariablePrepareToSleep(&r->cv);
	for (;;)
	{
		SpinLockAcquire(&r->mutex);
		if (r->state == RVD_REQ_FREE)
		{
			r->state = RVD_REQ_PENDING;
			r->abandoned = false;
			r->ticket++;
			ticket = r->ticket;
			text_to_cstring_buffer(kind, r->kind, RVD_REQUEST_KIND_LEN);
			r->dbid = MyDatabaseId;
			r->relid = relid;
			r->int_arg = PG_ARGISNULL(2) ? -1 : PG_GETARG_INT32(2);
			r->real_arg = PG_ARGISNULL(3) ? NAN : PG_GETARG_FLOAT8(3);
			SpinLockRelease(&r->mutex);
			break;
		}
		SpinLockRelease(&r->mutex);
		ConditionVariableTimedSleep(&r->cv, 1000L, PG_WAIT_EXTENSION);
		if (TimestampDifferenceExceeds(started, GetCurrentTimestamp(), RVD_REQUEST_TIMEOUT_MS))
		{
			ConditionVariableCancelSleep();
			ereport(ERROR,
					(errcode(ERRCODE_QUERY_CANCELED),
					 errmsg("timed out waiting for the ruvector_dag background worker")));
		}
	}

	/* 2. Wake the worker and wait for the answer; cancellation withdraws it. */
	PG_TRY();
	{
		for (;;)
		{
			Latch	   *latch = rvd_worker_latch();
			bool		done;

			if (latch != NULL)
			{
				SetLatch(latch);
				absent_since = 0;
			}
			else if (absent_since == 0)
				absent_since = GetCurrentTimestamp();
			else if (TimestampDifferenceExceeds(absent_since, GetCurrentTimestamp(), RVD_WORKER_ABSENT_MS))
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("the ruvector_dag background worker is not running"),
						 errhint("Check that ruvector_dag is in shared_preload_libraries and the server log for worker errors.")));

			SpinLockAcquire(&r->mutex);
			done = (r->ticket == ticket && r->state == RVD_REQ_DONE);
			if (done)
			{
				failed = r->failed;
				memcpy(sqlstate, r->sqlstate, 6);
				strlcpy(result, r->result, RVD_REQUEST_RESULT_LEN);
				r->state = RVD_REQ_FREE;
			}
			SpinLockRelease(&r->mutex);
			if (done)
				break;
			if (TimestampDifferenceExceeds(started, GetCurrentTimestamp(), RVD_REQUEST_TIMEOUT_MS))
				ereport(ERROR,
						(errcode(ERRCODE_QUERY_CANCELED),
						 errmsg("timed out waiting for the ruvector_dag background worker")));
			ConditionVariableTimedSleep(&r->cv, 1000L, PG_WAIT_EXTENSION);
		}
	}
	PG_CATCH();
	{
		ConditionVariableCancelSleep();
		rvd_abandon_request(ticket);
		PG_RE_THROW();
	}
	PG_END_TRY();
	ConditionVariableCancelSleep();
	ConditionVariableBroadcast(&r->cv);	/* the slot is free for the next session */

	if (failed)
		ereport(ERROR,
				(errcode(MAKE_SQLSTATE(sqlstate[0], sqlstate[1], sqlstate[2], sqlstate[3], sqlstate[4])),
				 errmsg("%s", result)));
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(result)));
}

/* The published learning counters of relid (zeros before the worker learned anything). */
Datum
rvd_learning_counters(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	TupleDesc	tupdesc;
	RvdLearnStats copy;
	bool		found = false;
	int			i;
	Datum		values[13];
	bool		nulls[13] = {0};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	LWLockAcquire(rvd_shared->stats_lock, LW_SHARED);
	for (i = 0; i < RVD_MAX_ENROLLED; i++)
	{
		if (rvd_shared->learn[i].relid == relid && rvd_shared->learn[i].dbid == MyDatabaseId)
		{
			copy = rvd_shared->learn[i];
			found = true;
			break;
		}
	}
	LWLockRelease(rvd_shared->stats_lock);
	if (!found)
		memset(&copy, 0, sizeof(copy));	/* nothing learned yet: zeros */

	values[0] = Int64GetDatum((int64) copy.consumed);
	values[1] = Int64GetDatum((int64) copy.queries_processed);
	values[2] = Int64GetDatum((int64) copy.learned);
	values[3] = Int64GetDatum((int64) copy.pattern_hits);
	values[4] = Float8GetDatum(copy.avg_latency_us);
	values[5] = Float8GetDatum(copy.prediction_error);
	values[6] = Int32GetDatum(copy.patterns_stored);
	values[7] = Int32GetDatum(copy.ewc_tasks);
	values[8] = Int64GetDatum((int64) copy.background_cycles);
	values[9] = Float8GetDatum(copy.last_cycle_ms);
	values[10] = TimestampTzGetDatum(copy.last_cycle_at);
	nulls[10] = copy.last_cycle_at == 0;
	values[11] = CStringGetTextDatum(copy.attention_type);
	values[12] = Int64GetDatum(rvd_ring_count(MyDatabaseId, relid));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
