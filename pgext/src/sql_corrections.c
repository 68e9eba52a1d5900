/*-------------------------------------------------------------------------
 *
 * sql_corrections.c
 *		ruvector_dag._relation_keys(query): every base and join relation the
 *		planner considers for a read-only query, with its correction key
 *		(relkey.c) and estimated rows.  Internal (revoked from PUBLIC): the
 *		regression tests check with it that a join has one key in every
 *		query that holds it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"

#include "corrections.h"

PG_FUNCTION_INFO_V1(rvd_relation_keys);

extern Datum rvd_check_read_only_query(PG_FUNCTION_ARGS);

Datum
rvd_relation_keys(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	List	   *seen = NIL;
	ListCell   *lc;
	char	   *sql;

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("query must not be NULL")));
	/* a single read-only SELECT (42601 or 22023 otherwise): EXPLAIN plans it and runs nothing */
	DirectFunctionCall1(rvd_check_read_only_query, PG_GETARG_DATUM(0));
	sql = psprintf("EXPLAIN (COSTS OFF) %s", text_to_cstring(PG_GETARG_TEXT_PP(0)));
	InitMaterializedSRF(fcinfo, 0);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rvd_collect_begin();
	PG_TRY();
	{
		SPI_execute(sql, false, 0);	/* (read_only would refuse EXPLAIN: a utility) */
	}
	PG_FINALLY();
	{
		seen = rvd_collect_end();
	}
	PG_END_TRY();
	foreach(lc, seen)
	{
		RvdSeenRelation *s = (RvdSeenRelation *) lfirst(lc);
		Datum		values[4];
		bool		nulls[4] = {0};

		values[0] = Int32GetDatum(s->query_level);
		values[1] = CStringGetTextDatum(s->relations);
		values[2] = Int64GetDatum((int64) s->key);
		nulls[2] = s->key == 0;
		values[3] = Float8GetDatum(s->rows);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	return (Datum) 0;
}
