/*-------------------------------------------------------------------------
 *
 * sql_corrections.c
 *		ruvector_dag._relation_keys(query): every base and join relation the
 *		planner considers for a read-only query, with its correction key
 *		(relkey.c) and estimated rows; the regression tests check with it
 *		that a join has one key in every query that holds it.
 *		ruvector_dag._explain_with_corrections(query, keys, factors, run): the
 *		query's plan under a correction set (corrections.c), its nodes keyed;
 *		the benchmark's oracle.  Both internal (revoked from PUBLIC).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "nodes/plannodes.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
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

/* ------------------------------------------------------------------------
 * ruvector_dag._explain_with_corrections(query, keys, factors, run)
 * ------------------------------------------------------------------------
 */
PG_FUNCTION_INFO_V1(rvd_explain_with_corrections);

typedef struct NodeKeys
{
	List	   *seen;			/* RvdSeenRelation of the statement's own level */
	List	   *keys;			/* int64 * per node (NULL: unkeyed), pre-order over outer/inner children */
} NodeKeys;

/* The key of a set of the statement's base relations, from what the hooks saw. */
static uint64
key_of(NodeKeys *nk, Bitmapset *relids)
{
	ListCell   *lc;

	foreach(lc, nk->seen)
	{
		RvdSeenRelation *s = (RvdSeenRelation *) lfirst(lc);

		if (s->query_level == 1 && bms_equal(s->base_relids, relids))
			return s->key;
	}
	return 0;
}

/*
 * Walk a plan as EXPLAIN lists its outer and inner children, pre-order; a
 * scan or join node gets the key of the base relations below it, any other
 * node 0.  Returns the base relations under the node (NULL: not only scans
 * and joins of plain relations of this level, e.g. a subquery).
 */
static Bitmapset *
walk(Plan *plan, NodeKeys *nk)
{
	Bitmapset  *below = NULL;
	Bitmapset  *outer;
	Bitmapset  *inner;
	int			index;
	bool		keyed = false;

	if (plan == NULL)
		return NULL;
	index = list_length(nk->keys);
	nk->keys = lappend(nk->keys, NULL);
	outer = walk(plan->lefttree, nk);
	inner = walk(plan->righttree, nk);
	switch (nodeTag(plan))
	{
		case T_SeqScan:
		case T_SampleScan:
		case T_IndexScan:
		case T_IndexOnlyScan:
		case T_BitmapHeapScan:
		case T_TidScan:
		case T_TidRangeScan:
			below = bms_make_singleton(((Scan *) plan)->scanrelid);
			keyed = true;
			break;
		case T_BitmapIndexScan:
			/* (its rows are the index's matches, not the relation's) */
			break;
		case T_NestLoop:
		case T_MergeJoin:
		case T_HashJoin:
			if (outer != NULL && inner != NULL)
			{
				below = bms_union(outer, inner);
				keyed = true;
			}
			break;
		case T_Hash:
		case T_Sort:
		case T_IncrementalSort:
		case T_Material:
		case T_Memoize:
		case T_Gather:
		case T_GatherMerge:
			below = outer;		/* passes its input's relations up, unkeyed */
			break;
		default:
			break;
	}
	if (keyed)
	{
		int64	   *k = palloc(sizeof(int64));

		*k = (int64) key_of(nk, below);
		list_nth_cell(nk->keys, index)->ptr_value = k;
	}
	return below;
}

/* Plan the query (with the corrections in force), collecting the relation sets, and key its nodes. */
static void
plan_node_keys(const char *query, NodeKeys *nk)
{
	List	   *raw = pg_parse_query(query);
	List	   *queries;
	PlannedStmt *stmt = NULL;

	rvd_collect_begin();
	PG_TRY();
	{
		queries = pg_analyze_and_rewrite_fixedparams(linitial_node(RawStmt, raw), query, NULL, 0, NULL);
		stmt = pg_plan_query(linitial_node(Query, queries), query, CURSOR_OPT_PARALLEL_OK, NULL);
	}
	PG_FINALLY();
	{
		nk->seen = rvd_collect_end();
	}
	PG_END_TRY();
	(void) walk(stmt->planTree, nk);
}

Datum
rvd_explain_with_corrections(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *query;
	ArrayType  *keys_array;
	ArrayType  *factors_array;
	Datum	   *key_datums;
	Datum	   *factor_datums;
	bool	   *key_nulls;
	bool	   *factor_nulls;
	int			nkeys;
	int			nfactors;
	uint64	   *keys;
	double	   *factors;
	bool		analyze;
	NodeKeys	nk = {0};
	char	   *plan_json = NULL;
	int			corrected = 0;
	Datum		values[4];
	bool		nulls[4] = {0};
	Datum	   *node_keys;
	ListCell   *lc;
	int			i;

	for (i = 0; i < 4; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("arguments must not be NULL")));
	DirectFunctionCall1(rvd_check_read_only_query, PG_GETARG_DATUM(0));
	query = text_to_cstring(PG_GETARG_TEXT_PP(0));
	keys_array = PG_GETARG_ARRAYTYPE_P(1);
	factors_array = PG_GETARG_ARRAYTYPE_P(2);
	analyze = PG_GETARG_BOOL(3);
	deconstruct_array(keys_array, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &key_datums, &key_nulls, &nkeys);
	deconstruct_array(factors_array, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &factor_datums, &factor_nulls,
					  &nfactors);
	if (nkeys != nfactors)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("keys has %d elements but factors has %d", nkeys, nfactors)));
	keys = palloc(sizeof(uint64) * Max(nkeys, 1));
	factors = palloc(sizeof(double) * Max(nkeys, 1));
	for (i = 0; i < nkeys; i++)
	{
		if (key_nulls[i] || factor_nulls[i])
			ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("keys and factors must not hold NULLs")));
		keys[i] = (uint64) DatumGetInt64(key_datums[i]);
		factors[i] = DatumGetFloat8(factor_datums[i]);
		if (!(factors[i] > 0.0) || isinf(factors[i]))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("factors must be positive and finite, got %g", factors[i])));
	}
	InitMaterializedSRF(fcinfo, 0);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rvd_corrections_begin(keys, factors, nkeys);
	PG_TRY();
	{
		plan_node_keys(query, &nk);
		corrected = rvd_corrections_count();	/* (the EXPLAIN below plans it again: count that one) */
		if (SPI_execute(psprintf("EXPLAIN (FORMAT JSON%s) %s", analyze ? ", ANALYZE, TIMING OFF" : "", query),
						false, 0) != SPI_OK_UTILITY || SPI_processed != 1)
			elog(ERROR, "EXPLAIN returned no plan");
		plan_json = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		plan_json = MemoryContextStrdup(rsinfo->econtext->ecxt_per_query_memory, plan_json);
	}
	PG_FINALLY();
	{
		corrected = rvd_corrections_end() - corrected;
	}
	PG_END_TRY();
	SPI_finish();
	node_keys = palloc(sizeof(Datum) * Max(list_length(nk.keys), 1));
	i = 0;
	foreach(lc, nk.keys)
	{
		int64	   *k = (int64 *) lfirst(lc);

		node_keys[i++] = Int64GetDatum(k ? *k : 0);
	}
	values[0] = CStringGetTextDatum(plan_json);
	values[1] = PointerGetDatum(construct_array(node_keys, i, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[2] = Int32GetDatum(corrected);
	values[3] = Int32GetDatum(list_length(nk.seen));
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}
