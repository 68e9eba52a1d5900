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
 *		the counters the worker publishes after each batch it learns from,
 *		NULL for a caller that may not read about relid.
 *
 * A request is for the table's owner (or a superuser): the calling role,
 * GetUserId(), is checked here in C, with the bounds of the arguments, for
 * _worker_request (not executable by PUBLIC) and for the SQL wrappers
 * ruvector_dag_learn, ruvector_dag_extract_patterns and
 * ruvector_dag_consolidate_patterns alike (docs/security.md).
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
#include "utils/numeric.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "access.h"
#include "guc.h"
#include "learn_stats.h"
#include "request.h"
#include "ring.h"
#include "seam_defs.h"

PG_FUNCTION_INFO_V1(rvd_worker_request);
PG_FUNCTION_INFO_V1(rvd_learning_counters);
PG_FUNCTION_INFO_V1(rvd_learn);
PG_FUNCTION_INFO_V1(rvd_extract_patterns);
PG_FUNCTION_INFO_V1(rvd_consolidate_patterns);

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

/*
 * Refuse what the worker must not be asked: an unknown kind, a relation the
 * calling role does not own (or that does not exist), arguments out of
 * bounds.  RVD_REQUEST_INT_NOT_GIVEN and a NaN real_arg mean "not given";
 * the bounds and markers are declared in ruvector_dag/definitions/seam.py.
 */
static void
rvd_refuse_num_clusters(int num_clusters)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("num_clusters must be between %d and %d, got %d",
					RVD_CLUSTERS_MIN, RVD_CLUSTERS_MAX, num_clusters)));
}

static void
rvd_check_request(const char *kind, Oid relid, int int_arg, double real_arg)
{
	bool		cycle = strcmp(kind, RVD_REQUEST_LEARN) == 0 || strcmp(kind, RVD_REQUEST_EXTRACT) == 0;

	if (!cycle && strcmp(kind, RVD_REQUEST_CONSOLIDATE) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown request kind \"%s\"", kind)));
	if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (!rvd_owns_relation(relid))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of table %s", get_rel_name(relid))));
	if (cycle && int_arg != RVD_REQUEST_INT_NOT_GIVEN && (int_arg < RVD_CLUSTERS_MIN || int_arg > RVD_CLUSTERS_MAX))
		rvd_refuse_num_clusters(int_arg);
	if (!cycle && !isnan(real_arg) && !(real_arg > RVD_SIMILARITY_MIN && real_arg <= RVD_SIMILARITY_MAX))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("similarity_threshold must be in (%g, %g], got %g",
						RVD_SIMILARITY_MIN, RVD_SIMILARITY_MAX, real_arg)));
}

/*
 * Post a request to the worker and wait for its answer (jsonb).
 * RVD_REQUEST_INT_NOT_GIVEN and a NaN real_arg mean "not given"; a given
 * int_arg < RVD_CLUSTERS_MIN is refused by the callers.
 */
static Datum
rvd_post_request(const char *kind, Oid relid, int int_arg, double real_arg)
{
	bool		failed = false;
	char		sqlstate[6];
	char	   *result;

	if (strlen(kind) >= RVD_REQUEST_KIND_LEN)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("request kind too long")));
	rvd_check_request(kind, relid, int_arg, real_arg);
	rvd_check_worker_database();

	/* 1. and 2.: post it, wake the worker, wait for the answer (request.c). */
	result = rvd_request_post(kind, relid, int_arg, real_arg, &failed, sqlstate);

	if (failed)
		ereport(ERROR,
				(errcode(MAKE_SQLSTATE(sqlstate[0], sqlstate[1], sqlstate[2], sqlstate[3], sqlstate[4])),
				 errmsg("%s", result)));
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(result));
}

/* ruvector_dag._worker_request(kind, relid, int_arg, real_arg): not for PUBLIC, checked all the same. */
Datum
rvd_worker_request(PG_FUNCTION_ARGS)
{
	int			int_arg = PG_ARGISNULL(2) ? RVD_REQUEST_INT_NOT_GIVEN : PG_GETARG_INT32(2);

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("kind and relid must not be NULL")));
	if (!PG_ARGISNULL(2) && int_arg < 0)	/* negative values are "not given" markers */
		rvd_refuse_num_clusters(int_arg);
	PG_RETURN_DATUM(rvd_post_request(text_to_cstring(PG_GETARG_TEXT_PP(0)), PG_GETARG_OID(1), int_arg,
									 PG_ARGISNULL(3) ? RVD_REQUEST_REAL_NOT_GIVEN : PG_GETARG_FLOAT8(3)));
}

/*
 * The enrolled table named by the wrapper's first argument (resolved on the
 * caller's search_path; 22004 if NULL, 42P01 if missing, 42501 unless the
 * caller owns it), or InvalidOid if it is not enrolled.
 */
static Oid
rvd_request_table(FunctionCallInfo fcinfo)
{
	Oid			relid = rvd_resolve_table(fcinfo, 0, false);

	if (!rvd_owns_relation(relid))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of table %s", get_rel_name(relid))));
	return rvd_is_enrolled(relid) ? relid : InvalidOid;
}

/* Text of key in a jsonb object, or NULL. */
static char *
rvd_answer_field(Datum answer, const char *key)
{
	Jsonb	   *jb = DatumGetJsonbP(answer);
	JsonbValue	v;

	if (getKeyJsonValueFromContainer(&jb->root, key, strlen(key), &v) == NULL)
		return NULL;
	if (v.type == jbvString)
		return pnstrdup(v.val.string.val, v.val.string.len);
	if (v.type == jbvBool)
		return pstrdup(v.val.boolean ? "true" : "false");
	if (v.type == jbvNumeric)
		return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v.val.numeric)));
	return NULL;
}

static int32
rvd_answer_int(Datum answer, const char *key)
{
	char	   *text = rvd_answer_field(answer, key);

	return text ? pg_strtoint32(text) : 0;
}

/* ruvector_dag_learn(table_name): learn now from everything captured, then a background cycle. */
Datum
rvd_learn(PG_FUNCTION_ARGS)
{
	Oid			relid = rvd_request_table(fcinfo);

	if (!OidIsValid(relid))
		PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in,
											CStringGetDatum("{\"" RVD_ANSWER_SUCCESS "\": false, \""
															RVD_ANSWER_ERROR "\": \"Neural DAG not enabled\"}")));
	PG_RETURN_DATUM(rvd_post_request(RVD_REQUEST_LEARN, relid, RVD_REQUEST_INT_NOT_GIVEN,
									 RVD_REQUEST_REAL_NOT_GIVEN));
}

/* ruvector_dag_extract_patterns(table_name, num_clusters): a background cycle; the patterns extracted. */
Datum
rvd_extract_patterns(PG_FUNCTION_ARGS)
{
	Oid			relid = rvd_request_table(fcinfo);
	int			k = PG_ARGISNULL(1) ? RVD_REQUEST_INT_NOT_GIVEN : PG_GETARG_INT32(1);
	Datum		answer;
	char	   *success;

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("Neural DAG not enabled for table '%s'", text_to_cstring(PG_GETARG_TEXT_PP(0)))));
	if (!PG_ARGISNULL(1) && k < RVD_CLUSTERS_MIN)
		rvd_refuse_num_clusters(k);
	answer = rvd_post_request(RVD_REQUEST_EXTRACT, relid, k, RVD_REQUEST_REAL_NOT_GIVEN);
	success = rvd_answer_field(answer, RVD_ANSWER_SUCCESS);
	if (success == NULL || strcmp(success, "true") != 0)
	{
		char	   *reason = rvd_answer_field(answer, RVD_ANSWER_REASON);

		ereport(WARNING, (errmsg("Pattern extraction skipped: %s", reason ? reason : "")));
		PG_RETURN_INT32(0);
	}
	PG_RETURN_INT32(rvd_answer_int(answer, RVD_ANSWER_PATTERNS_EXTRACTED));
}

/* ruvector_dag_consolidate_patterns(table_name, similarity_threshold): patterns merged away. */
Datum
rvd_consolidate_patterns(PG_FUNCTION_ARGS)
{
	Oid			relid = rvd_request_table(fcinfo);

	if (!OidIsValid(relid))
	{
		ereport(WARNING,
				(errmsg("Neural DAG not enabled for table '%s'", text_to_cstring(PG_GETARG_TEXT_PP(0)))));
		PG_RETURN_INT32(0);
	}
	if (PG_ARGISNULL(1) || isnan(PG_GETARG_FLOAT4(1)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("similarity_threshold must be in (%g, %g], got %s", RVD_SIMILARITY_MIN, RVD_SIMILARITY_MAX,
						PG_ARGISNULL(1) ? "NULL" : "NaN")));
	PG_RETURN_INT32(rvd_answer_int(rvd_post_request(RVD_REQUEST_CONSOLIDATE, relid, RVD_REQUEST_INT_NOT_GIVEN,
													PG_GETARG_FLOAT4(1)),
								   RVD_ANSWER_MERGED));
}

/* The published learning counters of relid (zeros before the worker learned anything). */
Datum
rvd_learning_counters(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	TupleDesc	tupdesc;
	RvdLearnStats copy;
	Datum		values[13];
	bool		nulls[13] = {0};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (!rvd_may_read_relation(relid))
		PG_RETURN_NULL();

	if (!rvd_learn_stats_get(relid, &copy))
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
