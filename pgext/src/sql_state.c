/*-------------------------------------------------------------------------
 *
 * sql_state.c
 *		SQL functions that show the shared state: capture counters, the
 *		buffered trajectories, and the record layout.
 *
 * All of them read shared memory only (no Python), so they are cheap and
 * work from any session.  Rows about a table are returned only to callers
 * that may read about it (rvd_may_read_relation: superusers, members of
 * pg_read_all_stats, its owner); the others get no rows.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/nodes.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "access.h"
#include "capture.h"			/* rvd_operator_name */
#include "registry.h"
#include "ring.h"

static void
rvd_require_shared(void)
{
	if (!rvd_ring_ready())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("ruvector_dag shared memory is not initialised")));
}

/*
 * Per enrolled table of this database, for the tables the caller may read
 * about (rvd_may_read_relation): executions of the statements that read it,
 * and how many were captured, left out by sampling and dropped (ring full).
 */
PG_FUNCTION_INFO_V1(ruvector_dag_capture_stats);
Datum
ruvector_dag_capture_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	RvdTableCounters *counters;
	int			n;
	int			i;

	rvd_require_shared();
	InitMaterializedSRF(fcinfo, 0);
	counters = palloc(sizeof(RvdTableCounters) * rvd_registry_size());
	/* Copied under the lock; catalog lookups come after it is released. */
	n = rvd_registry_counters(counters);
	for (i = 0; i < n; i++)
	{
		RvdTableCounters *c = &counters[i];
		Datum		values[6];
		bool		nulls[6] = {false, false, false, false, false, false};
		char	   *name;

		if (!rvd_may_read_relation(c->relid))
			continue;
		name = get_rel_name(c->relid);
		values[0] = ObjectIdGetDatum(c->relid);
		if (name)
			values[1] = CStringGetTextDatum(name);
		else
			nulls[1] = true;
		values[2] = Int64GetDatum((int64) c->executions);
		values[3] = Int64GetDatum((int64) c->captured);
		/* sampled out; 0, not negative, if a reset came between an execution's count and its record's */
		values[4] = Int64GetDatum(c->executions >= c->captured + c->dropped ?
								  (int64) (c->executions - c->captured - c->dropped) : 0);
		values[5] = Int64GetDatum((int64) c->dropped);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* One row: ring capacity, records buffered, written and consumed so far. */
PG_FUNCTION_INFO_V1(ruvector_dag_ring_stats);
Datum
ruvector_dag_ring_stats(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};
	uint64		head;
	uint64		tail;

	rvd_require_shared();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	rvd_ring_positions(&head, &tail);
	values[0] = Int32GetDatum(rvd_ring_capacity());
	values[1] = Int64GetDatum((int64) (head - tail));
	values[2] = Int64GetDatum((int64) head);
	values[3] = Int64GetDatum((int64) tail);
	values[4] = BoolGetDatum(rvd_registry_loaded());
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * The max_records argument of the peeking functions: NULL means 1000,
 * negative is an error, more than the ring holds means all of it.
 */
static int
rvd_max_records_arg(FunctionCallInfo fcinfo)
{
	int			max = PG_ARGISNULL(0) ? 1000 : PG_GETARG_INT32(0);

	rvd_require_shared();
	if (max < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_records must be >= 0, got %d", max)));
	return Min(max, rvd_ring_capacity());
}

/*
 * Keep, in place, the records of relations the caller may read about (all
 * of them for superusers and members of pg_read_all_stats); returns how
 * many are kept.  Records come in runs of few relations: the last answer
 * is remembered.
 */
static int
rvd_readable_records(RvdTrajectory *recs, int n)
{
	Oid			last = InvalidOid;
	bool		last_ok = false;
	int			kept = 0;
	int			i;

	if (rvd_may_read_relation(InvalidOid))
		return n;
	for (i = 0; i < n; i++)
	{
		if (recs[i].relid != last || i == 0)
		{
			last = recs[i].relid;
			last_ok = rvd_may_read_relation(last);
		}
		if (!last_ok)
			continue;
		if (kept != i)
			memcpy(&recs[kept], &recs[i], sizeof(RvdTrajectory));
		kept++;
	}
	return kept;
}

static const char *
rvd_cmd_name(int cmd)
{
	switch (cmd)
	{
		case CMD_SELECT:
			return "select";
		case CMD_UPDATE:
			return "update";
		case CMD_INSERT:
			return "insert";
		case CMD_DELETE:
			return "delete";
		case CMD_MERGE:
			return "merge";
		default:
			return "other";
	}
}

static Datum
rvd_nodes_jsonb(const RvdTrajectory *rec)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '[');
	for (i = 0; i < rec->n_nodes; i++)
	{
		const RvdPlanNode *n = &rec->nodes[i];

		appendStringInfo(&buf,
						 "%s{\"op\": \"%s\", \"parent\": %d, \"relid\": %u, \"plan_rows\": %.9g, "
						 "\"startup_cost\": %.9g, \"total_cost\": %.9g, \"plan_width\": %d, "
						 "\"actual_rows\": %.9g, \"loops\": %.9g, \"actual_ms\": %.9g}",
						 i ? ", " : "", rvd_operator_name(n->op), n->parent, n->relid,
						 n->plan_rows, n->startup_cost, n->total_cost, n->plan_width,
						 n->actual_rows, n->loops, n->actual_ms);
	}
	appendStringInfoChar(&buf, ']');
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data));
}

/*
 * The buffered (not yet consumed) trajectories of this database, oldest
 * first, without consuming them.
 */
PG_FUNCTION_INFO_V1(ruvector_dag_buffered_trajectories);
Datum
ruvector_dag_buffered_trajectories(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			max = rvd_max_records_arg(fcinfo);
	RvdTrajectory *copy;
	int			n;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	/* A large ring (up to 1M records) exceeds palloc's 1 GB limit. */
	copy = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(RvdTrajectory) * Max(max, 1));

	n = rvd_readable_records(copy, rvd_ring_read(copy, max, false, MyDatabaseId));

	for (i = 0; i < n; i++)
	{
		const RvdTrajectory *r = &copy[i];
		Datum		values[16];
		bool		nulls[16];
		double		total_blocks = (double) r->shared_blks_hit + (double) r->shared_blks_read;

		memset(nulls, 0, sizeof(nulls));
		values[0] = Int64GetDatum((int64) r->seq);
		values[1] = ObjectIdGetDatum(r->relid);
		values[2] = Int64GetDatum((int64) r->query_id);
		values[3] = Int32GetDatum(r->nesting_level);
		values[4] = TimestampTzGetDatum(r->captured_at);
		values[5] = Float8GetDatum(r->planning_us);
		values[6] = Float8GetDatum(r->execution_us);
		values[7] = Int64GetDatum((int64) r->rows_processed);
		values[8] = Int64GetDatum((int64) r->memory_bytes);
		if (total_blocks > 0)
			values[9] = Float8GetDatum(r->shared_blks_hit / total_blocks);
		else
			nulls[9] = true;
		values[10] = CStringGetTextDatum(rvd_cmd_name(r->cmd_type));
		values[11] = Int32GetDatum(r->n_nodes);
		values[12] = Int32GetDatum(r->total_nodes);
		values[13] = BoolGetDatum((r->flags & RVD_FLAG_TRUNCATED) != 0);
		values[14] = rvd_nodes_jsonb(r);
		values[15] = ObjectIdGetDatum(r->userid);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * The same buffered records as raw bytes: n consecutive RvdTrajectory
 * structs, unused node slots zeroed.  This is what the engine decodes with
 * cffi (ruvector_dag/engine/trajectory.py); the test suite compares it with
 * the JSON view above.
 */
PG_FUNCTION_INFO_V1(ruvector_dag_buffered_records);
Datum
ruvector_dag_buffered_records(PG_FUNCTION_ARGS)
{
	int			max = rvd_max_records_arg(fcinfo);
	bytea	   *out;
	int			n;

	if ((Size) max * sizeof(RvdTrajectory) > MaxAllocSize - VARHDRSZ)
		max = (MaxAllocSize - VARHDRSZ) / sizeof(RvdTrajectory);
	out = palloc0(VARHDRSZ + (Size) Max(max, 1) * sizeof(RvdTrajectory));
	n = rvd_readable_records((RvdTrajectory *) VARDATA(out),
							 rvd_ring_read((RvdTrajectory *) VARDATA(out), max, false, MyDatabaseId));
	SET_VARSIZE(out, VARHDRSZ + (Size) n * sizeof(RvdTrajectory));
	PG_RETURN_BYTEA_P(out);
}

/* Empty the ring and zero every counter (superuser; see the install script). */
PG_FUNCTION_INFO_V1(ruvector_dag_capture_reset);
Datum
ruvector_dag_capture_reset(PG_FUNCTION_ARGS)
{
	rvd_require_shared();
	rvd_ring_reset();
	PG_RETURN_VOID();
}

/* sizeof/offsetof of the record as this compiler laid it out. */
PG_FUNCTION_INFO_V1(ruvector_dag_record_layout);
Datum
ruvector_dag_record_layout(PG_FUNCTION_ARGS)
{
	StringInfoData buf;
	bool		first = true;

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"version\": %d, \"max_plan_nodes\": %d, \"RvdTrajectory\": {\"sizeof\": %zu",
					 RVD_RECORD_VERSION, RVD_MAX_PLAN_NODES, sizeof(RvdTrajectory));
#define X(f) appendStringInfo(&buf, ", \"%s\": %zu", #f, offsetof(RvdTrajectory, f));
	RVD_TRAJECTORY_FIELDS(X)
#undef X
	appendStringInfo(&buf, "}, \"RvdPlanNode\": {\"sizeof\": %zu", sizeof(RvdPlanNode));
#define X(f) appendStringInfo(&buf, ", \"%s\": %zu", #f, offsetof(RvdPlanNode, f));
	RVD_PLAN_NODE_FIELDS(X)
#undef X
	appendStringInfoString(&buf, "}, \"operators\": [");
	for (int code = 1; strcmp(rvd_operator_name(code), "Other") != 0; code++)
	{
		appendStringInfo(&buf, "%s\"%s\"", first ? "" : ", ", rvd_operator_name(code));
		first = false;
	}
	appendStringInfoString(&buf, "]}");
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}
