/*-------------------------------------------------------------------------
 *
 * sql_steer.c
 *		SQL functions of plan steering: ruvector_dag_steering_arms(),
 *		ruvector_dag_steering_decisions(), ruvector_dag_pin_arm(query_id,
 *		arm), ruvector_dag_try_arm(query_id, arm) and
 *		ruvector_dag_unpin(query_id).
 *
 * Decisions live in directives.c; the arms are plan.c's (steering_defs.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/lsyscache.h"
#include "parser/parser.h"		/* standard_conforming_strings, backslash_quote */
#include "utils/builtins.h"
#include "utils/inval.h"

#include "access.h"
#include "directives.h"
#include "normalize.h"
#include "enroll.h"
#include "plan.h"

PG_FUNCTION_INFO_V1(rvd_steering_arms);
PG_FUNCTION_INFO_V1(rvd_steering_decisions);
PG_FUNCTION_INFO_V1(rvd_pin_arm);
PG_FUNCTION_INFO_V1(rvd_try_arm);
PG_FUNCTION_INFO_V1(rvd_unpin);

static int
rvd_arm_by_name(const char *name)
{
	int			i = rvd_arm_index(name);

	if (i >= 0)
		return i;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown steering arm \"%s\"", name),
			 errhint("ruvector_dag_steering_arms() lists the arms.")));
	return 0;					/* keep the compiler quiet */
}

/* (arm_id, name, settings) of every arm. */
Datum
rvd_steering_arms(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			a;

	InitMaterializedSRF(fcinfo, 0);
	for (a = 0; a < RVD_N_ARMS; a++)
	{
		Datum		values[3];
		bool		nulls[3] = {0};
		StringInfoData buf;
		int			i;

		initStringInfo(&buf);
		for (i = 0; i < rvd_arm(a)->n_settings; i++)
			appendStringInfo(&buf, "%s%s = %s", i ? ", " : "", rvd_arm(a)->gucs[i], rvd_arm(a)->values[i]);
		values[0] = Int32GetDatum(a);
		values[1] = CStringGetTextDatum(rvd_arm(a)->name);
		values[2] = CStringGetTextDatum(buf.data);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * (query_id, arm, source) of this database's decisions that the caller may
 * read: all of them for superusers and members of pg_read_all_stats, those
 * learned on a table it owns for others (pinned and tried decisions name
 * no table: privileged readers only).
 */
Datum
rvd_steering_decisions(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	RvdDecision *copy;
	int			n;
	int			i;
	bool		privileged = rvd_may_read_relation(InvalidOid);

	InitMaterializedSRF(fcinfo, 0);
	copy = palloc(sizeof(RvdDecision) * rvd_decisions_capacity());
	n = rvd_decisions_copy(copy);
	for (i = 0; i < n; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {0};

		if (copy[i].dbid != MyDatabaseId)
			continue;
		if (!(privileged || (OidIsValid(copy[i].relid) && rvd_owns_relation(copy[i].relid))))
			continue;
		values[0] = Int64GetDatum((int64) copy[i].query_id);
		values[1] = CStringGetTextDatum(rvd_arm(copy[i].arm)->name);
		values[2] = CStringGetTextDatum(copy[i].source == RVD_DECISION_PINNED ? "pinned" :
										copy[i].source == RVD_DECISION_TRIAL ? "trial" : "learned");
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* Validated (query_id, arm) arguments of pin_arm and try_arm. */
static int
rvd_decision_args(FunctionCallInfo fcinfo, uint64 *query_id)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("query_id and arm must not be NULL")));
	if (PG_GETARG_INT64(0) == 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("query_id must not be 0")));
	*query_id = (uint64) PG_GETARG_INT64(0);
	return rvd_arm_by_name(text_to_cstring(PG_GETARG_TEXT_PP(1)));
}

/*
 * Whether pins are kept in ruvector_dag.pinned_arms (from 0.5.0): a library
 * newer than the installed SQL (before ALTER EXTENSION UPDATE) pins in
 * shared memory only, until restart, as 0.4.0 did.
 */
static bool
rvd_pins_table_exists(void)
{
	Oid			nsp = get_namespace_oid("ruvector_dag", true);

	return OidIsValid(nsp) && OidIsValid(get_relname_relid("pinned_arms", nsp));
}

static void
rvd_refuse_on_standby(const char *what)
{
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot %s on a hot standby", what),
				 errhint("Pin on the primary: pins are replicated to its standbys.")));
}

/*
 * Plan query_id under arm until unpinned; the engine never overrides it.
 * The pin is a row of ruvector_dag.pinned_arms, written in the caller's
 * transaction, and a decision in shared memory from commit (enroll.c): it
 * survives restarts and failovers and reaches the standbys.
 */
Datum
rvd_pin_arm(PG_FUNCTION_ARGS)
{
	uint64		query_id;
	int			arm = rvd_decision_args(fcinfo, &query_id);
	Oid			types[4] = {INT8OID, TEXTOID, OIDOID, INT4OID};
	Datum		values[4];

	rvd_refuse_on_standby("pin an arm");
	if (!rvd_pins_table_exists())
	{
		ereport(NOTICE,
				(errmsg("the pin lasts until the server restarts"),
				 errhint("ALTER EXTENSION ruvector_dag UPDATE keeps pins in ruvector_dag.pinned_arms.")));
		rvd_set_decision(query_id, arm, RVD_DECISION_PINNED);
	}
	else
	{
		values[0] = Int64GetDatum((int64) query_id);
		values[1] = CStringGetTextDatum(rvd_arm(arm)->name);
		values[2] = ObjectIdGetDatum(GetUserId());
		values[3] = Int32GetDatum(rvd_decisions_capacity());
		/* At most the decision cache's capacity of pins: it must hold them all. */
		if (rvd_spi_as_superuser("INSERT INTO ruvector_dag.pinned_arms (query_id, arm, pinned_by) "
								 "SELECT $1, $2, $3 WHERE (SELECT pg_catalog.count(*) FROM ruvector_dag.pinned_arms p "
								 "WHERE p.query_id OPERATOR(pg_catalog.<>) $1) OPERATOR(pg_catalog.<) $4 "
								 "ON CONFLICT (query_id) DO UPDATE SET arm = EXCLUDED.arm, "
								 "pinned_by = EXCLUDED.pinned_by, pinned_at = pg_catalog.now()",
								 4, types, values) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("cannot pin more than %d queries", rvd_decisions_capacity()),
					 errhint("ruvector_dag_unpin() the pins no longer needed (ruvector_dag.pinned_arms lists them), "
							 "or raise ruvector.max_steered_queries and restart the server.")));
		rvd_pin_queue(query_id, arm);
	}
	CacheInvalidateRelcacheAll();	/* re-plan cached plans: we do not know query_id's tables */
	PG_RETURN_VOID();
}

/*
 * Plan query_id under arm as a trial: the engine measures it against the
 * default like an arm of its own and keeps it only if it is not slower (the
 * regression guard reverts it otherwise).  Refused over a pinned decision.
 */
Datum
rvd_try_arm(PG_FUNCTION_ARGS)
{
	uint64		query_id;
	int			arm = rvd_decision_args(fcinfo, &query_id);
	uint8		source;

	(void) rvd_steer_lookup(query_id, &source);
	if (source == RVD_DECISION_PINNED)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("query %lld has a pinned arm", (long long) query_id),
				 errhint("ruvector_dag_unpin() it first.")));
	rvd_set_decision(query_id, arm, RVD_DECISION_TRIAL);
	CacheInvalidateRelcacheAll();
	PG_RETURN_VOID();
}

/*
 * Remove query_id's pin (or tried arm): at commit, with its row.  Returns
 * whether there was one.
 */
Datum
rvd_unpin(PG_FUNCTION_ARGS)
{
	uint64		query_id;
	uint8		source;
	bool		found;

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("query_id must not be NULL")));
	query_id = (uint64) PG_GETARG_INT64(0);
	rvd_refuse_on_standby("unpin an arm");
	found = rvd_steer_lookup(query_id, &source) != 0;
	if (!rvd_pins_table_exists())
		(void) rvd_set_decision(query_id, 0, RVD_DECISION_PINNED);
	else
	{
		Oid			types[1] = {INT8OID};
		Datum		values[1] = {Int64GetDatum((int64) query_id)};

		if (rvd_spi_as_superuser("DELETE FROM ruvector_dag.pinned_arms WHERE query_id OPERATOR(pg_catalog.=) $1",
								 1, types, values) > 0)
			found = true;
		rvd_pin_queue(query_id, 0);
	}
	CacheInvalidateRelcacheAll();
	PG_RETURN_BOOL(found);
}

/*
 * ruvector_dag._normalized_query(text): the text as the steering view shows
 * it (normalize.c), for pg_regress to check the normalization; internal,
 * revoked from PUBLIC.
 */
PG_FUNCTION_INFO_V1(rvd_normalized_query);
Datum
rvd_normalized_query(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(rvd_normalize_query(text_to_cstring(PG_GETARG_TEXT_PP(0)),
														  standard_conforming_strings, backslash_quote)));
}
