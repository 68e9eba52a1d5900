/*-------------------------------------------------------------------------
 *
 * steer.c
 *		Plan steering: the shared decision cache and planning under an arm.
 *
 * A decision maps a statement's query id to an arm (steering_defs.h,
 * generated from ruvector_dag/steering.py): a set of planner settings such
 * as enable_nestloop = off.  The planner hook (capture.c) asks
 * rvd_steer_arm() for the statement being planned; if it has an arm, the
 * settings are applied with GUC_ACTION_SAVE inside a new GUC nest level
 * (rvd_steer_begin) that the hook always closes (rvd_steer_end, in a
 * PG_FINALLY), so every setting is restored after planning, on error too.
 * No Python runs here, and the lookup takes no lock: each backend keeps a
 * private, sorted copy of its database's decisions, re-copied (under
 * decisions_lock, shared) only when the shared steer_generation moved, so a
 * statement pays one atomic read and a binary search.  It is done only when
 * the statement reads an enrolled table, and never with
 * ruvector.dag_learning_mode = off.  The same copy holds the worker's
 * capture rules (per-query sampling, capture.c).
 *
 * EXPLAIN of a steered statement plans and prints inside the arm's nest
 * level with the SETTINGS option forced on, so its output ends with
 * "Settings: enable_mergejoin = 'off', enable_nestloop = 'off'": the
 * decision, visible where a DBA looks first.
 *
 * SQL: ruvector_dag_steering_arms(), ruvector_dag_steering_decisions(),
 * ruvector_dag_pin_arm(query_id, arm), ruvector_dag_try_arm(query_id, arm)
 * and ruvector_dag_unpin(query_id).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/explain.h"
#if PG_VERSION_NUM >= 180000
#include "commands/explain_state.h"
#endif
#include "funcapi.h"
#include "miscadmin.h"
#include "optimizer/optimizer.h"
#include "tcop/tcopprot.h"
#include "nodes/parsenodes.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"

#include "ruvector_dag.h"
#include "steering_defs.h"

static const RvdArm rvd_arms[RVD_N_ARMS] = RVD_ARMS;

PG_FUNCTION_INFO_V1(rvd_steering_arms);
PG_FUNCTION_INFO_V1(rvd_steering_decisions);
PG_FUNCTION_INFO_V1(rvd_pin_arm);
PG_FUNCTION_INFO_V1(rvd_try_arm);
PG_FUNCTION_INFO_V1(rvd_unpin);

/* This backend's copy of its database's decisions and of the capture rules, both sorted by query id. */
static uint32 local_generation = 0;
static int	local_n_decisions = 0;
static RvdDecision local_decisions[RVD_MAX_DECISIONS];
static int	local_n_rules = 0;
static RvdCaptureRule local_rules[RVD_MAX_CAPTURE_RULES];
static int	local_n_want_text = 0;	/* rules with RVD_RULE_WANT_TEXT */

static int
rvd_decision_cmp(const void *a, const void *b)
{
	uint64		x = ((const RvdDecision *) a)->query_id;
	uint64		y = ((const RvdDecision *) b)->query_id;

	return x < y ? -1 : x > y;
}

static int
rvd_rule_cmp(const void *a, const void *b)
{
	uint64		x = ((const RvdCaptureRule *) a)->query_id;
	uint64		y = ((const RvdCaptureRule *) b)->query_id;

	return x < y ? -1 : x > y;
}

/* Re-copy decisions and capture rules when the shared generation moved. */
static void
rvd_refresh_local(void)
{
	uint32		gen = pg_atomic_read_u32(&rvd_shared->steer_generation);
	uint32		n;
	uint32		i;

	if (gen == local_generation)
		return;
	LWLockAcquire(rvd_shared->decisions_lock, LW_SHARED);
	gen = pg_atomic_read_u32(&rvd_shared->steer_generation);
	n = pg_atomic_read_u32(&rvd_shared->n_decisions);
	local_n_decisions = 0;
	for (i = 0; i < n; i++)
		if (rvd_shared->decisions[i].dbid == MyDatabaseId)
			local_decisions[local_n_decisions++] = rvd_shared->decisions[i];
	local_n_rules = rvd_shared->n_capture_rules;
	memcpy(local_rules, rvd_shared->capture_rules, sizeof(RvdCaptureRule) * local_n_rules);
	local_n_want_text = 0;
	for (i = 0; i < (uint32) local_n_rules; i++)
		local_n_want_text += (local_rules[i].flags & RVD_RULE_WANT_TEXT) != 0;
	local_generation = gen;
	LWLockRelease(rvd_shared->decisions_lock);
	qsort(local_decisions, local_n_decisions, sizeof(RvdDecision), rvd_decision_cmp);
}

/*
 * Arm of a statement about to be planned, or 0 (the default plan): only
 * statements that read an enrolled table are steered, only while capture is
 * on, and never with ruvector.dag_learning_mode = off.  *source gets the
 * decision's source.
 */
int
rvd_steer_arm(Query *parse, uint8 *source)
{
	*source = 0;
	if (parse == NULL || rvd_shared == NULL ||
		rvd_dag_learning_mode == RVD_DAG_LEARNING_MODE_OFF)
		return 0;
	rvd_refresh_local();
	if (local_n_decisions == 0 ||
		!rvd_capture_active() || rvd_rtable_enrolled_slot(parse->rtable) < 0)
		return 0;
	return rvd_steer_lookup(parse->queryId, source);
}

/* Arm decided for (this database, query_id), or 0; *source its source. */
int
rvd_steer_lookup(uint64 query_id, uint8 *source)
{
	RvdDecision key;
	const RvdDecision *d;

	*source = 0;
	if (query_id == 0 || rvd_shared == NULL ||
		rvd_dag_learning_mode == RVD_DAG_LEARNING_MODE_OFF)
		return 0;
	rvd_refresh_local();
	if (local_n_decisions == 0)
		return 0;
	key.query_id = query_id;
	d = bsearch(&key, local_decisions, local_n_decisions, sizeof(RvdDecision), rvd_decision_cmp);
	if (d == NULL || d->arm <= 0 || d->arm >= RVD_N_ARMS)
		return 0;
	*source = d->source;
	return d->arm;
}

/* The worker's capture rule for query_id, if it has one: its keep threshold and RVD_RULE_* flags. */
bool
rvd_capture_rule(uint64 query_id, uint32 *threshold, uint8 *flags)
{
	RvdCaptureRule key;
	const RvdCaptureRule *r;

	if (query_id == 0 || rvd_shared == NULL)
		return false;
	rvd_refresh_local();
	if (local_n_rules == 0)
		return false;
	key.query_id = query_id;
	r = bsearch(&key, local_rules, local_n_rules, sizeof(RvdCaptureRule), rvd_rule_cmp);
	if (r == NULL)
		return false;
	*threshold = r->threshold;
	*flags = r->flags;
	return true;
}

/* Whether the worker wants any statement's text (one atomic read, usually). */
bool
rvd_texts_wanted(void)
{
	if (rvd_shared == NULL)
		return false;
	rvd_refresh_local();
	return local_n_want_text > 0;
}

/* Replace the capture rules (the worker's; at most RVD_MAX_CAPTURE_RULES are kept). */
void
rvd_set_capture_rules(const RvdCaptureRule *rules, int n)
{
	n = Min(Max(n, 0), RVD_MAX_CAPTURE_RULES);
	LWLockAcquire(rvd_shared->decisions_lock, LW_EXCLUSIVE);
	memcpy(rvd_shared->capture_rules, rules, sizeof(RvdCaptureRule) * n);
	qsort(rvd_shared->capture_rules, n, sizeof(RvdCaptureRule), rvd_rule_cmp);
	rvd_shared->n_capture_rules = n;
	pg_atomic_fetch_add_u32(&rvd_shared->steer_generation, 1);
	LWLockRelease(rvd_shared->decisions_lock);
}

/* Open a GUC nest level and apply the arm's settings; returns the level. */
int
rvd_steer_begin(int arm)
{
	int			nest = NewGUCNestLevel();
	int			i;

	for (i = 0; i < rvd_arms[arm].n_settings; i++)
		(void) set_config_option(rvd_arms[arm].gucs[i], rvd_arms[arm].values[i],
								 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	return nest;
}

/* Restore every setting rvd_steer_begin changed. */
void
rvd_steer_end(int nest_level)
{
	AtEOXact_GUC(true, nest_level);
}

/* ------------------------------------------------------------------------
 * EXPLAIN
 * ------------------------------------------------------------------------
 */
static ExplainOneQuery_hook_type prev_ExplainOneQuery = NULL;

#if PG_VERSION_NUM < 170000
/*
 * ExplainOneQuery() of PostgreSQL 15 and 16 for a plannable statement (the
 * hook is only called for those); 17 exports it as standard_ExplainOneQuery.
 */
static void
standard_ExplainOneQuery(Query *query, int cursorOptions, IntoClause *into, ExplainState *es,
						 const char *queryString, ParamListInfo params, QueryEnvironment *queryEnv)
{
	PlannedStmt *plan;
	instr_time	planstart;
	instr_time	planduration;
	BufferUsage bufusage_start;
	BufferUsage bufusage;

	if (es->buffers)
		bufusage_start = pgBufferUsage;
	INSTR_TIME_SET_CURRENT(planstart);
	plan = pg_plan_query(query, queryString, cursorOptions, params);
	INSTR_TIME_SET_CURRENT(planduration);
	INSTR_TIME_SUBTRACT(planduration, planstart);
	if (es->buffers)
	{
		memset(&bufusage, 0, sizeof(BufferUsage));
		BufferUsageAccumDiff(&bufusage, &pgBufferUsage, &bufusage_start);
	}
	ExplainOnePlan(plan, into, es, queryString, params, queryEnv, &planduration,
				   es->buffers ? &bufusage : NULL);
}
#endif

/*
 * EXPLAIN of a steered statement: plan and print under the arm, with the
 * SETTINGS option on, so the arm's settings are listed with the plan.  The
 * nest level is closed whatever happens (ANALYZE runs inside it too, which
 * only matters for statements planned during execution: they see the same
 * settings the user's statement was planned with).
 */
static void
rvd_ExplainOneQuery(Query *query, int cursorOptions, IntoClause *into, ExplainState *es,
					const char *queryString, ParamListInfo params, QueryEnvironment *queryEnv)
{
	uint8		source;
	int			arm = rvd_steer_arm(query, &source);
	int			nest = 0;

	if (arm > 0)
	{
		es->settings = true;
		nest = rvd_steer_begin(arm);
	}
	PG_TRY();
	{
		if (prev_ExplainOneQuery)
			prev_ExplainOneQuery(query, cursorOptions, into, es, queryString, params, queryEnv);
		else
			standard_ExplainOneQuery(query, cursorOptions, into, es, queryString, params, queryEnv);
	}
	PG_FINALLY();
	{
		if (arm > 0)
			rvd_steer_end(nest);
	}
	PG_END_TRY();
}

void
rvd_install_steer_hooks(void)
{
	prev_ExplainOneQuery = ExplainOneQuery_hook;
	ExplainOneQuery_hook = rvd_ExplainOneQuery;
}

/* ------------------------------------------------------------------------
 * SQL
 * ------------------------------------------------------------------------
 */

static int
rvd_arm_by_name(const char *name)
{
	int			i;

	for (i = 0; i < RVD_N_ARMS; i++)
		if (strcmp(rvd_arms[i].name, name) == 0)
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
		for (i = 0; i < rvd_arms[a].n_settings; i++)
			appendStringInfo(&buf, "%s%s = %s", i ? ", " : "", rvd_arms[a].gucs[i], rvd_arms[a].values[i]);
		values[0] = Int32GetDatum(a);
		values[1] = CStringGetTextDatum(rvd_arms[a].name);
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
	uint32		n;
	uint32		i;
	bool		privileged = rvd_may_read_relation(InvalidOid);

	InitMaterializedSRF(fcinfo, 0);
	copy = palloc(sizeof(RvdDecision) * RVD_MAX_DECISIONS);
	LWLockAcquire(rvd_shared->decisions_lock, LW_SHARED);
	n = pg_atomic_read_u32(&rvd_shared->n_decisions);
	memcpy(copy, rvd_shared->decisions, sizeof(RvdDecision) * n);
	LWLockRelease(rvd_shared->decisions_lock);
	for (i = 0; i < n; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {0};

		if (copy[i].dbid != MyDatabaseId)
			continue;
		if (!(privileged || (OidIsValid(copy[i].relid) && rvd_owns_relation(copy[i].relid))))
			continue;
		values[0] = Int64GetDatum((int64) copy[i].query_id);
		values[1] = CStringGetTextDatum(rvd_arms[copy[i].arm].name);
		values[2] = CStringGetTextDatum(copy[i].source == RVD_DECISION_PINNED ? "pinned" :
										copy[i].source == RVD_DECISION_TRIAL ? "trial" : "learned");
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * Set (or replace) the decision of query_id; arm 0 (default) removes it.
 * A learned decision never replaces a pinned one (nothing changes then).
 * Returns whether a decision for query_id existed.
 */
bool
rvd_set_decision(uint64 query_id, int arm, uint8 source)
{
	return rvd_set_decision_for(InvalidOid, query_id, arm, source);
}

/* The same, for a decision learned on relid (who may read it: rvd_steering_decisions). */
bool
rvd_set_decision_for(Oid relid, uint64 query_id, int arm, uint8 source)
{
	uint32		n;
	uint32		i;
	bool		found = false;

	LWLockAcquire(rvd_shared->decisions_lock, LW_EXCLUSIVE);
	n = pg_atomic_read_u32(&rvd_shared->n_decisions);
	for (i = 0; i < n; i++)
	{
		RvdDecision *d = &rvd_shared->decisions[i];

		if (d->query_id == query_id && d->dbid == MyDatabaseId)
		{
			found = true;
			if (source == RVD_DECISION_LEARNED && d->source == RVD_DECISION_PINNED)
				break;
			if (arm == 0)
			{
				*d = rvd_shared->decisions[n - 1];
				pg_atomic_write_u32(&rvd_shared->n_decisions, n - 1);
			}
			else
			{
				d->arm = (int16) arm;
				d->source = source;
				d->relid = relid;
			}
			break;
		}
	}
	if (!found && arm != 0)
	{
		if (n >= RVD_MAX_DECISIONS)
		{
			LWLockRelease(rvd_shared->decisions_lock);
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("too many steering decisions (at most %d)", RVD_MAX_DECISIONS)));
		}
		rvd_shared->decisions[n].dbid = MyDatabaseId;
		rvd_shared->decisions[n].query_id = query_id;
		rvd_shared->decisions[n].arm = (int16) arm;
		rvd_shared->decisions[n].source = source;
		rvd_shared->decisions[n].relid = relid;
		pg_atomic_write_u32(&rvd_shared->n_decisions, n + 1);
	}
	pg_atomic_fetch_add_u32(&rvd_shared->steer_generation, 1);
	LWLockRelease(rvd_shared->decisions_lock);
	return found;
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

/* Plan query_id under arm until unpinned; the engine never overrides it. */
Datum
rvd_pin_arm(PG_FUNCTION_ARGS)
{
	uint64		query_id;
	int			arm = rvd_decision_args(fcinfo, &query_id);

	rvd_set_decision(query_id, arm, RVD_DECISION_PINNED);
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

Datum
rvd_unpin(PG_FUNCTION_ARGS)
{
	bool		found;

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("query_id must not be NULL")));
	found = rvd_set_decision((uint64) PG_GETARG_INT64(0), 0, RVD_DECISION_PINNED);
	CacheInvalidateRelcacheAll();
	PG_RETURN_BOOL(found);
}
