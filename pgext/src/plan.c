/*-------------------------------------------------------------------------
 *
 * plan.c
 *		Plan steering: planning under an arm, and EXPLAIN of it.
 *
 * A decision (directives.c) maps a statement's query id to an arm
 * (steering_defs.h, generated from the Python side's steering table): a
 * set of planner settings such as enable_nestloop = off.  The planner hook
 * asks for the arm of the statement being planned; if it has one, the
 * settings are applied with GUC_ACTION_SAVE inside a new GUC nest level
 * (rvd_steer_begin) that the hook always closes (rvd_steer_end, in a
 * PG_FINALLY), so every setting is restored after planning, on error too.
 * No Python runs here, and the lookup takes no lock (directives.c keeps a
 * private copy).  It is done only when the statement reads an enrolled
 * table, and never with ruvector.dag_learning_mode = off.
 *
 * The planner hook also times the planning of statements on enrolled
 * tables and remembers it, with the arm, for capture.c to record at
 * ExecutorEnd (rvd_plan_take_last).
 *
 * EXPLAIN of a steered statement plans and prints inside the arm's nest
 * level with the SETTINGS option forced on, so its output ends with
 * "Settings: enable_mergejoin = 'off', enable_nestloop = 'off'": the
 * decision, visible where a DBA looks first.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/explain.h"
#if PG_VERSION_NUM >= 180000
#include "commands/explain_state.h"
#endif
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "optimizer/optimizer.h"
#include "optimizer/planner.h"
#include "portability/instr_time.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"

#include "directives.h"
#include "guc.h"
#include "plan.h"
#include "registry.h"

static const RvdArm rvd_arms[RVD_N_ARMS] = RVD_ARMS;

static planner_hook_type prev_planner_hook = NULL;
static ExplainOneQuery_hook_type prev_ExplainOneQuery = NULL;

/*
 * Planner calls in progress in this backend: what runs while planning is
 * nested (capture.c adds this to its executor nesting level).
 */
static int	plan_nesting_level = 0;

/*
 * Planning time of the statement this backend planned last, keyed by query
 * id: plan caches copy the PlannedStmt, so its address cannot be the key.
 */
static uint64 last_planned_query_id = 0;
static double last_planning_us = 0;
static int	last_planned_arm = 0;	/* steering arm of that planning */
static uint8 last_planned_source = 0;	/* and the decision's source */

/* One arm of steering_defs.h (0 <= arm < RVD_N_ARMS). */
const RvdArm *
rvd_arm(int arm)
{
	return &rvd_arms[arm];
}

/* The arm called name, or -1. */
int
rvd_arm_index(const char *name)
{
	int			i;

	for (i = 0; i < RVD_N_ARMS; i++)
		if (strcmp(rvd_arms[i].name, name) == 0)
			return i;
	return -1;
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

/*
 * Arm of a statement about to be planned, or 0 (the default plan): only
 * statements that read an enrolled table are steered, only while capture is
 * on, and never with ruvector.dag_learning_mode = off.  *source gets the
 * decision's source.
 */
static int
rvd_steer_arm(Query *parse, uint8 *source)
{
	*source = 0;
	if (parse == NULL || rvd_dag_learning_mode == RVD_DAG_LEARNING_MODE_OFF)
		return 0;
	/* (0 also when shared memory is missing) */
	if (rvd_decisions_local_count() == 0 ||
		!rvd_capture_active() || rvd_rtable_enrolled_slot(parse->rtable) < 0)
		return 0;
	return rvd_steer_lookup(parse->queryId, source);
}

int
rvd_plan_nesting_level(void)
{
	return plan_nesting_level;
}

/*
 * If query_id is the query this backend planned last (and timed), its
 * planning time, arm and the arm's source, once: a cached plan executed
 * again was not planned.
 */
bool
rvd_plan_take_last(uint64 query_id, double *planning_us, int *arm, uint8 *source)
{
	if (query_id == 0 || query_id != last_planned_query_id)
		return false;
	*planning_us = last_planning_us;
	*arm = last_planned_arm;
	*source = last_planned_source;
	last_planned_query_id = 0;
	return true;
}

/* ------------------------------------------------------------------------
 * The planner hook
 * ------------------------------------------------------------------------
 */
static PlannedStmt *
rvd_call_planner(Query *parse, const char *query_string, int cursorOptions, ParamListInfo boundParams)
{
	PlannedStmt *result;

	/*
	 * What runs while planning (a function folded to a constant) is nested
	 * too, as pg_stat_statements counts it: its statements are not the
	 * client's (trials.c offers only those).
	 */
	plan_nesting_level++;
	PG_TRY();
	{
		if (prev_planner_hook)
			result = prev_planner_hook(parse, query_string, cursorOptions, boundParams);
		else
			result = standard_planner(parse, query_string, cursorOptions, boundParams);
	}
	PG_FINALLY();
	{
		plan_nesting_level--;
	}
	PG_END_TRY();
	return result;
}

static PlannedStmt *
rvd_planner(Query *parse, const char *query_string, int cursorOptions, ParamListInfo boundParams)
{
	PlannedStmt *result;
	bool		timed = rvd_capture_active();
	uint8		source = 0;
	int			arm = rvd_steer_arm(parse, &source);
	instr_time	start;
	instr_time	duration;

	if (timed)
		INSTR_TIME_SET_CURRENT(start);
	if (arm > 0)
	{
		/* Plan under the arm's settings; they are restored whatever happens. */
		int			nest = rvd_steer_begin(arm);

		PG_TRY();
		{
			result = rvd_call_planner(parse, query_string, cursorOptions, boundParams);
		}
		PG_FINALLY();
		{
			rvd_steer_end(nest);
		}
		PG_END_TRY();
	}
	else
		result = rvd_call_planner(parse, query_string, cursorOptions, boundParams);
	if (timed)
	{
		INSTR_TIME_SET_CURRENT(duration);
		INSTR_TIME_SUBTRACT(duration, start);
		last_planned_query_id = result->queryId;
		last_planning_us = INSTR_TIME_GET_MICROSEC(duration);
		last_planned_arm = arm;
		last_planned_source = source;
	}
	return result;
}

/* ------------------------------------------------------------------------
 * EXPLAIN
 * ------------------------------------------------------------------------
 */

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
rvd_install_plan_hooks(void)
{
	prev_planner_hook = planner_hook;
	planner_hook = rvd_planner;
	prev_ExplainOneQuery = ExplainOneQuery_hook;
	ExplainOneQuery_hook = rvd_ExplainOneQuery;
}
