/*-------------------------------------------------------------------------
 *
 * capture.c
 *		Executor hooks that capture trajectories.
 *
 * For every statement, top level or nested, whose plan reads an enrolled
 * table, ExecutorEnd copies the executed plan tree (the operator DAG, with
 * estimates and actual row counts) and the statement's metrics into one
 * fixed-size record and appends it to the shared ring.  The decision is
 * taken from the PlannedStmt in the QueryDesc, so prepared statements and
 * cached plans, which skip the planner, are captured too.
 *
 * Cost on the query path: statements that read no enrolled table pay one
 * atomic read (the registry generation) and, if anything is enrolled in
 * this database, a binary search of a private array per relation of the
 * range table.  Captured statements get row instrumentation only (per-node
 * timing behind ruvector.dag_capture_timing).
 *
 * Counting, as pg_stat_statements counts calls: every execution of a
 * statement that reads an enrolled table is counted at ExecutorEnd (the
 * table's `executions`), captured or not; ring.c counts which were captured
 * and which dropped (docs/operations.md "Capture counters").  Whether an
 * execution is captured is decided once, at ExecutorStart, and remembered
 * for that QueryDesc (RvdTracked): another extension's instrumentation
 * (EXPLAIN ANALYZE, auto_explain.log_analyze) does not make a statement
 * look sampled.
 *
 * Sampling (rvd_sampled): a statement is captured with probability
 * min(ruvector.dag_capture_sample_rate, the worker's published fraction),
 * as auto_explain.sample_rate does it; a statement left out pays neither
 * instrumentation nor a record.  The worker also publishes per-query rules:
 * every execution of the queries it is steering (exploration and the
 * regression guard need every measurement), a fraction of settled,
 * expensive ones (on a long analytic query, row instrumentation costs a few
 * per cent).  Always kept: the first execution of each query id in a
 * session (a new query reaches the engine at once, whatever the rate) and
 * executions on an administrator's trial arm.  Nothing here calls Python, allocates, or
 * can raise an error once the statement has run: a capture problem can
 * never fail a user's query.
 *
 * The planner hook (plan.c) times planning and applies steering arms;
 * ExecutorEnd takes what it recorded (rvd_plan_take_last).  Which tables
 * are enrolled comes from the registry's private copy (registry.c), the
 * capture rules, sampling threshold and decisions from the worker's
 * directives (directives.c); the record goes to the ring (ring.c).  The
 * executor hooks also serve trials.c: every ExecutorStart passes through
 * its guard, and ExecutorEnd offers a statement the worker asked for.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "common/pg_prng.h"
#include "executor/executor.h"
#include "executor/instrument.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "parser/parsetree.h"
#include "portability/instr_time.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "capture.h"
#include "directives.h"
#include "guc.h"
#include "plan.h"
#include "registry.h"
#include "ring.h"
#include "trials.h"

static ExecutorStart_hook_type prev_ExecutorStart = NULL;
static ExecutorRun_hook_type prev_ExecutorRun = NULL;
static ExecutorFinish_hook_type prev_ExecutorFinish = NULL;
static ExecutorEnd_hook_type prev_ExecutorEnd = NULL;

/*
 * Executor calls in progress in this backend; with the planner calls in
 * progress (plan.c), the statement's nesting level (0 = top-level
 * statement).
 */
static int	exec_nesting_level = 0;

static int
rvd_nesting_level(void)
{
	return exec_nesting_level + rvd_plan_nesting_level();
}

/* Operator table generated from ruvector_dag/definitions/layout.py. */
static const NodeTag rvd_op_tags[] = {
#define RVD_OP(tag, name) tag,
	RVD_OPERATOR_LIST
#undef RVD_OP
};
static const char *const rvd_op_names[] = {
#define RVD_OP(tag, name) name,
	RVD_OPERATOR_LIST
#undef RVD_OP
};

const char *
rvd_operator_name(int code)
{
	if (code >= 1 && code <= (int) lengthof(rvd_op_names))
		return rvd_op_names[code - 1];
	return "Other";
}

static uint16
rvd_op_code(NodeTag tag)
{
	int			i;

	for (i = 0; i < (int) lengthof(rvd_op_tags); i++)
		if (rvd_op_tags[i] == tag)
			return (uint16) (i + 1);
	return 0;
}

/* Registry slot of the first enrolled relation the plan reads, or -1. */
static int
rvd_enrolled_slot(PlannedStmt *stmt)
{
	if (stmt == NULL || !rvd_capture_active())
		return -1;
	return rvd_rtable_enrolled_slot(stmt->rtable);
}

/* ------------------------------------------------------------------------
 * Building the record
 * ------------------------------------------------------------------------
 */
typedef struct RvdWalkContext
{
	RvdTrajectory *rec;
	EState	   *estate;
	int			parent;			/* index of the node being expanded */
	bool		timing;
} RvdWalkContext;

static Oid
rvd_plan_relid(Plan *plan, EState *estate)
{
	Index		rti;
	RangeTblEntry *rte;

	switch (nodeTag(plan))
	{
		case T_SeqScan:
		case T_SampleScan:
		case T_IndexScan:
		case T_IndexOnlyScan:
		case T_BitmapIndexScan:
		case T_BitmapHeapScan:
		case T_TidScan:
		case T_TidRangeScan:
		case T_ForeignScan:
		case T_CustomScan:
			rti = ((Scan *) plan)->scanrelid;
			break;
		case T_ModifyTable:
			rti = ((ModifyTable *) plan)->nominalRelation;
			break;
		default:
			return InvalidOid;
	}
	if (rti == 0 || rti > estate->es_range_table_size)
		return InvalidOid;
	rte = exec_rt_fetch(rti, estate);
	return rte->rtekind == RTE_RELATION ? rte->relid : InvalidOid;
}

/* Pre-order walk in EXPLAIN's order: initplans, outer, inner, members, subplans. */
static bool
rvd_walk_node(PlanState *ps, void *arg)
{
	RvdWalkContext *ctx = (RvdWalkContext *) arg;
	RvdTrajectory *rec = ctx->rec;
	int			saved_parent = ctx->parent;
	int			index = -1;

	if (ps == NULL)
		return false;
	if (rec->total_nodes < PG_UINT16_MAX)
		rec->total_nodes++;
	if (rec->n_nodes < RVD_MAX_PLAN_NODES)
	{
		RvdPlanNode *n = &rec->nodes[rec->n_nodes];
		Plan	   *plan = ps->plan;

		index = rec->n_nodes++;
		memset(n, 0, sizeof(*n));
		n->op = rvd_op_code(nodeTag(plan));
		n->parent = (int16) ctx->parent;
		n->relid = rvd_plan_relid(plan, ctx->estate);
		n->plan_rows = (float) plan->plan_rows;
		n->startup_cost = (float) plan->startup_cost;
		n->total_cost = (float) plan->total_cost;
		n->plan_width = plan->plan_width;
		n->actual_ms = -1;
		if (ps->instrument)
		{
			InstrEndLoop(ps->instrument);
			n->actual_rows = (float) ps->instrument->ntuples;
			n->loops = (float) ps->instrument->nloops;
			if (ctx->timing)
				n->actual_ms = (float) (ps->instrument->total * 1000.0);
		}
		else
			n->actual_rows = -1;
	}
	else
		rec->flags |= RVD_FLAG_TRUNCATED;

	ctx->parent = index;
	planstate_tree_walker(ps, rvd_walk_node, ctx);
	ctx->parent = saved_parent;
	return false;
}

static void
rvd_capture(QueryDesc *qd, int slot)
{
	/* One record per backend at a time: capture is not re-entrant. */
	static RvdTrajectory rec;
	RvdWalkContext ctx;
	Instrumentation *total = qd->totaltime;
	EState	   *estate = qd->estate;
	uint8		source = 0;
	double		planning_us;
	int			arm;

	memset(&rec, 0, offsetof(RvdTrajectory, nodes));
	InstrEndLoop(total);
	rec.query_id = qd->plannedstmt->queryId;
	rec.captured_at = GetCurrentTimestamp();
	rec.dbid = MyDatabaseId;
	rec.relid = rvd_registry_relid(slot);	/* (checked by the caller: still the table it read) */
	rec.userid = GetUserId();
	rec.session_userid = GetSessionUserId();
	rec.nesting_level = rvd_nesting_level();
	/* (once: a cached plan executed again was not planned) */
	if (rvd_plan_take_last(rec.query_id, &planning_us, &arm, &source))
	{
		rec.planning_us = planning_us;
		rec.arm = (uint16) arm;
	}
	else
		rec.arm = (uint16) rvd_steer_lookup(rec.query_id, &source);	/* cached plan: the arm in force */
	if (rec.arm != 0 && source == RVD_DECISION_PINNED)
		rec.flags |= RVD_FLAG_PINNED;
	rec.execution_us = total->total * 1000000.0;
	rec.rows_processed = estate->es_processed;
	rec.memory_bytes = MemoryContextMemAllocated(estate->es_query_cxt, true);
	rec.shared_blks_hit = total->bufusage.shared_blks_hit;
	rec.shared_blks_read = total->bufusage.shared_blks_read;
	rec.cmd_type = (uint8) qd->operation;
	rec.version = RVD_RECORD_VERSION;
	ctx.timing = (qd->instrument_options & INSTRUMENT_TIMER) != 0;
	if (ctx.timing)
		rec.flags |= RVD_FLAG_TIMING;

	ctx.rec = &rec;
	ctx.estate = estate;
	ctx.parent = -1;
	rvd_walk_node(qd->planstate, &ctx);

	rvd_ring_push(&rec, slot);
}

/* ------------------------------------------------------------------------
 * Sampling
 * ------------------------------------------------------------------------
 */

/* Query ids this session has captured, direct-mapped by the id's low bits. */
#define RVD_SEEN_SLOTS 256
static uint64 seen_query_ids[RVD_SEEN_SLOTS];

/*
 * Whether this execution of query_id is captured: a query with a capture
 * rule of the worker's (steered: always; settled: its own fraction) or
 * else the worker's global fraction, both capped by
 * ruvector.dag_capture_sample_rate; the first execution in this session and
 * those on a trial arm are kept regardless.  *first: this is the query's
 * first execution in this session (as far as RVD_SEEN_SLOTS remembers).
 */
static bool
rvd_sampled(uint64 query_id, bool *first)
{
	uint32		threshold = rvd_sample_threshold();
	uint32		rule;
	uint8		flags;
	uint64	   *seen = &seen_query_ids[query_id % RVD_SEEN_SLOTS];
	uint8		source;

	*first = *seen != query_id;
	*seen = query_id;			/* (or a colliding id came in between) */
	if (rvd_capture_rule(query_id, &rule, &flags))
	{
		if (flags & RVD_RULE_EVERY)
			return true;		/* being steered: every execution */
		threshold = Min(threshold, rule);
	}
	threshold = Min(threshold, rvd_fraction_threshold(rvd_dag_capture_sample_rate));
	if (threshold == PG_UINT32_MAX || *first)
		return true;
	/* An administrator's trial arm is judged from every execution too. */
	(void) rvd_steer_lookup(query_id, &source);
	return source == RVD_DECISION_TRIAL ||
		pg_prng_uint32(&pg_global_prng_state) < threshold;
}

/* ------------------------------------------------------------------------
 * The executions in progress that read an enrolled table
 * ------------------------------------------------------------------------
 */

/*
 * What ExecutorStart decided for one execution, looked up by its QueryDesc
 * at ExecutorEnd.  Allocated in the execution's own memory (es_query_cxt),
 * whose reset callback unlinks it: an execution ended by an error, which
 * never reaches ExecutorEnd, leaves nothing behind.  The list is as long as
 * the nesting of executions in progress.
 */
typedef struct RvdTracked
{
	QueryDesc  *qd;
	int			slot;			/* registry slot of the table it is counted under ... */
	Oid			relid;			/* ... which was this table (a slot freed meanwhile may hold another) */
	bool		capture;		/* sampled: instrumented for a record */
	bool		top_level_text; /* its text is the client's (trials.c: it may be offered) */
	bool		offer_first;	/* a first execution in this session, offered for transfer's trial */
	struct RvdTracked *next;
	MemoryContextCallback unlink;
} RvdTracked;

static RvdTracked *tracked = NULL;

static void
rvd_untrack(void *arg)
{
	RvdTracked **p;

	for (p = &tracked; *p != NULL; p = &(*p)->next)
	{
		if (*p == (RvdTracked *) arg)
		{
			*p = (*p)->next;
			return;
		}
	}
}

static void
rvd_track(QueryDesc *qd, int slot, bool capture, bool first)
{
	RvdTracked *t = MemoryContextAlloc(qd->estate->es_query_cxt, sizeof(RvdTracked));

	t->qd = qd;
	t->slot = slot;
	t->relid = rvd_registry_relid(slot);
	t->capture = capture;
	/*
	 * Transfer (ruvector.dag_transfer) may try an arm on a new query right
	 * after its first execution: the worker cannot have asked for a text it
	 * has never seen, so a captured first execution offers it unasked.
	 */
	t->offer_first = capture && first && rvd_dag_transfer && rvd_dag_steering_trials &&
		rvd_dag_learning_mode == RVD_DAG_LEARNING_MODE_LEARN;
	t->top_level_text = (t->offer_first || rvd_texts_wanted()) && rvd_statement_top_level_text(qd);
	t->unlink.func = rvd_untrack;
	t->unlink.arg = t;
	MemoryContextRegisterResetCallback(qd->estate->es_query_cxt, &t->unlink);
	t->next = tracked;
	tracked = t;
}

static RvdTracked *
rvd_tracked(QueryDesc *qd)
{
	RvdTracked *t;

	for (t = tracked; t != NULL; t = t->next)
		if (t->qd == qd)
			return t;
	return NULL;
}

/* ------------------------------------------------------------------------
 * Hooks
 * ------------------------------------------------------------------------
 */
static void
rvd_ExecutorStart(QueryDesc *qd, int eflags)
{
	bool		capture;
	bool		first = false;
	int			slot = -1;

	rvd_trial_executor_start();
	if ((eflags & EXEC_FLAG_EXPLAIN_ONLY) == 0)
		slot = rvd_enrolled_slot(qd->plannedstmt);
	capture = slot >= 0 && rvd_sampled(qd->plannedstmt->queryId, &first);

	if (capture)
	{
		qd->instrument_options |= INSTRUMENT_ROWS;
		if (rvd_dag_capture_timing)
			qd->instrument_options |= INSTRUMENT_TIMER;
	}

	if (prev_ExecutorStart)
		prev_ExecutorStart(qd, eflags);
	else
		standard_ExecutorStart(qd, eflags);

	/* Whole-statement time and buffers, as pg_stat_statements measures them. */
	if (capture && qd->totaltime == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(qd->estate->es_query_cxt);

		qd->totaltime = InstrAlloc(1, INSTRUMENT_TIMER | INSTRUMENT_BUFFERS, false);
		MemoryContextSwitchTo(old);
	}
	if (slot >= 0)
		rvd_track(qd, slot, capture, first);
}

static void
#if PG_VERSION_NUM >= 180000
rvd_ExecutorRun(QueryDesc *qd, ScanDirection direction, uint64 count)
#else
rvd_ExecutorRun(QueryDesc *qd, ScanDirection direction, uint64 count, bool execute_once)
#endif
{
	exec_nesting_level++;
	PG_TRY();
	{
#if PG_VERSION_NUM >= 180000
		if (prev_ExecutorRun)
			prev_ExecutorRun(qd, direction, count);
		else
			standard_ExecutorRun(qd, direction, count);
#else
		if (prev_ExecutorRun)
			prev_ExecutorRun(qd, direction, count, execute_once);
		else
			standard_ExecutorRun(qd, direction, count, execute_once);
#endif
	}
	PG_FINALLY();
	{
		exec_nesting_level--;
	}
	PG_END_TRY();
}

static void
rvd_ExecutorFinish(QueryDesc *qd)
{
	exec_nesting_level++;
	PG_TRY();
	{
		if (prev_ExecutorFinish)
			prev_ExecutorFinish(qd);
		else
			standard_ExecutorFinish(qd);
	}
	PG_FINALLY();
	{
		exec_nesting_level--;
	}
	PG_END_TRY();
}

static void
rvd_ExecutorEnd(QueryDesc *qd)
{
	RvdTracked *t = rvd_tracked(qd);

	/*
	 * Disenrolled while it ran, its slot perhaps given to another table
	 * since: counted under nobody, captured for nobody (its record would
	 * describe this table to the readers of the other).
	 */
	if (t != NULL && rvd_registry_relid(t->slot) != t->relid)
		t = NULL;
	if (t != NULL)
	{
		uint32		threshold;
		uint8		flags;

		/*
		 * want_text: the worker wants this query's text, to try an arm on it
		 * before any user runs it (trials.c); captured or not, the
		 * execution has it.  Or, unasked, a new query's first execution
		 * here, for transfer (offer_first): it takes a slot only while half
		 * of them are free.
		 */
		bool		ruled = false;
		bool		asked = false;
		bool		want_text;

		if (t->offer_first || rvd_texts_wanted())	/* (usually neither: one atomic read) */
		{
			ruled = rvd_capture_rule(qd->plannedstmt->queryId, &threshold, &flags);
			asked = ruled && (flags & RVD_RULE_WANT_TEXT) != 0;
		}
		/* (a query the worker has a rule for is no new one: it asks if it wants the text) */
		want_text = asked || (t->offer_first && !ruled);

		/* Counted first: the counters' readers rely on executions >= captured + dropped. */
		rvd_registry_note_execution(t->slot);
		pg_write_barrier();
		if (t->capture && qd->totaltime != NULL && qd->planstate != NULL)
			rvd_capture(qd, t->slot);
		if (want_text)
			rvd_statement_offer(qd, rvd_nesting_level(), t->top_level_text, asked);
	}

	if (prev_ExecutorEnd)
		prev_ExecutorEnd(qd);
	else
		standard_ExecutorEnd(qd);
}

void
rvd_install_capture_hooks(void)
{
	prev_ExecutorStart = ExecutorStart_hook;
	ExecutorStart_hook = rvd_ExecutorStart;
	prev_ExecutorRun = ExecutorRun_hook;
	ExecutorRun_hook = rvd_ExecutorRun;
	prev_ExecutorFinish = ExecutorFinish_hook;
	ExecutorFinish_hook = rvd_ExecutorFinish;
	prev_ExecutorEnd = ExecutorEnd_hook;
	ExecutorEnd_hook = rvd_ExecutorEnd;
}
