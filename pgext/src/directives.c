/*-------------------------------------------------------------------------
 *
 * directives.c
 *		What the background worker publishes for the backends, in shared
 *		memory: steering decisions, per-query capture rules, the global
 *		sampling threshold (and, through the rules, the statement texts it
 *		wants for trials).
 *
 * A decision maps a statement's query id to an arm (steering_defs.h,
 * generated from the Python side's steering table): a set of planner
 * settings such as enable_nestloop = off, applied by the planner hook
 * (plan.c).  A capture rule tells capture (capture.c) how often to keep a
 * query's executions and whether to offer its text (trials.c).
 *
 * No Python runs here, and the lookups take no lock: each backend keeps a
 * private, sorted copy of its database's decisions and of the capture
 * rules, re-copied (under the directives lock, shared) only when the
 * shared `generation` moved, so a statement pays one atomic read and a
 * binary search.
 *
 * Size: ruvector.max_steered_queries decisions (all databases), fixed at
 * server start; the capture rules, RVD_MAX_CAPTURE_RULES (the worker
 * publishes those of the queries it is steering first).
 *
 * Lock (tranche "ruvector_dag directives"): exclusive to change decisions[]
 * and capture_rules[] (and then bump `generation`), shared to copy them.
 * decisions[] is kept compact (removal moves the last entry into the
 * hole).  The sampling threshold is a lone atomic, written without the
 * lock.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/memutils.h"

#include "directives.h"
#include "guc.h"

#define RVD_DIRECTIVES_TRANCHE "ruvector_dag directives"

typedef struct RvdDirectivesShared
{
	LWLock	   *lock;
	/*
	 * Read by every captured statement, written rarely (by the worker): a
	 * cache line each.
	 *
	 * generation		bumped on every change of decisions[] or capture_rules[].
	 * sample_threshold	capture keeps a statement when a uniform uint32 draw
	 *					is below it (PG_UINT32_MAX: every statement); the
	 *					worker lowers it while statements arrive faster than
	 *					its CPU budget learns from them.
	 */
	union
	{
		pg_atomic_uint32 generation;
		char		pad_generation[PG_CACHE_LINE_SIZE];
	};
	union
	{
		pg_atomic_uint32 sample_threshold;
		char		pad_sample_threshold[PG_CACHE_LINE_SIZE];
	};
	/* Per-query capture rules, sorted by query id. */
	int			n_capture_rules;	/* under the lock */
	RvdCaptureRule capture_rules[RVD_MAX_CAPTURE_RULES];
	pg_atomic_uint32 n_decisions;	/* read without the lock: 0 skips the lookup */
	uint32		max_decisions;	/* ruvector.max_steered_queries at server start */
	RvdDecision decisions[FLEXIBLE_ARRAY_MEMBER];	/* under the lock */
} RvdDirectivesShared;

static RvdDirectivesShared *directives = NULL;

/* This backend's copy of its database's decisions and of the capture rules, both sorted by query id. */
static uint32 local_generation = 0;
static int	local_n_decisions = 0;
static RvdDecision *local_decisions = NULL;	/* max_decisions entries, TopMemoryContext */
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

Size
rvd_directives_shmem_size(void)
{
	return add_size(offsetof(RvdDirectivesShared, decisions),
					mul_size(sizeof(RvdDecision), rvd_max_steered_queries));
}

/* Most decisions in force at once (ruvector.max_steered_queries as the server started). */
int
rvd_decisions_capacity(void)
{
	return (int) directives->max_decisions;
}

void
rvd_directives_request_locks(void)
{
	RequestNamedLWLockTranche(RVD_DIRECTIVES_TRANCHE, 1);
}

/* Called by shmem.c's startup hook, under AddinShmemInitLock. */
void
rvd_directives_shmem_init(void)
{
	bool		found;

	directives = ShmemInitStruct("ruvector_dag directives", rvd_directives_shmem_size(), &found);
	if (found)
		return;
	memset(directives, 0, rvd_directives_shmem_size());
	directives->lock = &GetNamedLWLockTranche(RVD_DIRECTIVES_TRANCHE)[0].lock;
	pg_atomic_init_u32(&directives->generation, 1);
	pg_atomic_init_u32(&directives->sample_threshold, PG_UINT32_MAX);
	pg_atomic_init_u32(&directives->n_decisions, 0);
	directives->max_decisions = (uint32) rvd_max_steered_queries;
}

/* Re-copy decisions and capture rules when the shared generation moved. */
static void
rvd_refresh_local(void)
{
	uint32		gen = pg_atomic_read_u32(&directives->generation);
	uint32		n;
	uint32		i;

	if (gen == local_generation)
		return;
	if (local_decisions == NULL)	/* once, before the lock: a failure is an error before the statement runs */
		local_decisions = MemoryContextAlloc(TopMemoryContext, sizeof(RvdDecision) * directives->max_decisions);
	LWLockAcquire(directives->lock, LW_SHARED);
	gen = pg_atomic_read_u32(&directives->generation);
	n = pg_atomic_read_u32(&directives->n_decisions);
	local_n_decisions = 0;
	for (i = 0; i < n; i++)
		if (directives->decisions[i].dbid == MyDatabaseId)
			local_decisions[local_n_decisions++] = directives->decisions[i];
	local_n_rules = directives->n_capture_rules;
	memcpy(local_rules, directives->capture_rules, sizeof(RvdCaptureRule) * local_n_rules);
	local_n_want_text = 0;
	for (i = 0; i < (uint32) local_n_rules; i++)
		local_n_want_text += (local_rules[i].flags & RVD_RULE_WANT_TEXT) != 0;
	local_generation = gen;
	LWLockRelease(directives->lock);
	qsort(local_decisions, local_n_decisions, sizeof(RvdDecision), rvd_decision_cmp);
}

/*
 * Decisions of this database in this backend's copy (refreshed first): 0
 * (also before shared memory exists) lets the planner hook skip
 * everything else.
 */
int
rvd_decisions_local_count(void)
{
	if (directives == NULL)
		return 0;
	rvd_refresh_local();
	return local_n_decisions;
}

/* Arm decided for (this database, query_id), or 0; *source its source. */
int
rvd_steer_lookup(uint64 query_id, uint8 *source)
{
	RvdDecision key;
	const RvdDecision *d;

	*source = 0;
	if (query_id == 0 || directives == NULL ||
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

	if (query_id == 0 || directives == NULL)
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
	if (directives == NULL)
		return false;
	rvd_refresh_local();
	return local_n_want_text > 0;
}

/* Replace the capture rules (the worker's; at most RVD_MAX_CAPTURE_RULES are kept). */
void
rvd_set_capture_rules(const RvdCaptureRule *rules, int n)
{
	n = Min(Max(n, 0), RVD_MAX_CAPTURE_RULES);
	LWLockAcquire(directives->lock, LW_EXCLUSIVE);
	memcpy(directives->capture_rules, rules, sizeof(RvdCaptureRule) * n);
	qsort(directives->capture_rules, n, sizeof(RvdCaptureRule), rvd_rule_cmp);
	directives->n_capture_rules = n;
	pg_atomic_fetch_add_u32(&directives->generation, 1);
	LWLockRelease(directives->lock);
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

/*
 * Set (relid, query_id) -> arm under the lock (held exclusively by the
 * caller).  When the table is full and query_id has no entry: with `evict`,
 * a decision that is not a pin gives its place (the engine publishes its own
 * again as it learns); without, or if every entry is a pin, nothing changes
 * and *full is set.  Never raises.
 */
static bool
rvd_put_decision(Oid relid, uint64 query_id, int arm, uint8 source, bool evict, bool *full)
{
	uint32		n = pg_atomic_read_u32(&directives->n_decisions);
	uint32		i;

	*full = false;
	for (i = 0; i < n; i++)
	{
		RvdDecision *d = &directives->decisions[i];

		if (d->query_id == query_id && d->dbid == MyDatabaseId)
		{
			if (source == RVD_DECISION_LEARNED && d->source == RVD_DECISION_PINNED)
				return true;
			if (arm == 0)
			{
				*d = directives->decisions[n - 1];
				pg_atomic_write_u32(&directives->n_decisions, n - 1);
			}
			else
			{
				d->arm = (int16) arm;
				d->source = source;
				d->relid = relid;
			}
			pg_atomic_fetch_add_u32(&directives->generation, 1);
			return true;
		}
	}
	if (arm == 0)
		return false;
	if (n >= directives->max_decisions)
	{
		for (i = 0; evict && i < n; i++)
			if (directives->decisions[i].source != RVD_DECISION_PINNED)
				break;
		if (!evict || i == n)
		{
			*full = true;
			return false;
		}
	}
	else
		i = n++;
	directives->decisions[i].dbid = MyDatabaseId;
	directives->decisions[i].query_id = query_id;
	directives->decisions[i].arm = (int16) arm;
	directives->decisions[i].source = source;
	directives->decisions[i].relid = relid;
	pg_atomic_write_u32(&directives->n_decisions, n);
	pg_atomic_fetch_add_u32(&directives->generation, 1);
	return false;
}

/* The same, for a decision learned on relid (who may read it: rvd_steering_decisions). */
bool
rvd_set_decision_for(Oid relid, uint64 query_id, int arm, uint8 source)
{
	bool		found;
	bool		full;

	LWLockAcquire(directives->lock, LW_EXCLUSIVE);
	found = rvd_put_decision(relid, query_id, arm, source, false, &full);
	LWLockRelease(directives->lock);
	if (full)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many steering decisions (at most %u)", directives->max_decisions),
				 errhint("Raise ruvector.max_steered_queries and restart the server.")));
	return found;
}

/*
 * A committed pin (or unpin: arm 0), from the commit callback (enroll.c),
 * where nothing may raise: the transaction is committed already.  A full
 * table makes room by evicting a learned or tried decision; it can hold no
 * more pins than its capacity, which ruvector_dag_pin_arm checks
 * before it writes its row.  Returns false if the pin could not be placed
 * (the worker's next sync places it once there is room).
 */
bool
rvd_apply_pin(uint64 query_id, int arm)
{
	bool		full;

	LWLockAcquire(directives->lock, LW_EXCLUSIVE);
	(void) rvd_put_decision(InvalidOid, query_id, arm, RVD_DECISION_PINNED, true, &full);
	LWLockRelease(directives->lock);
	return !full;
}

/*
 * Make this database's pinned decisions exactly (query_ids[i], arms[i]):
 * the worker's sync from ruvector_dag.pinned_arms (worker.c).  A pin
 * replaces any other decision for its query; a pinned decision not in the
 * list is removed.  The generation moves only if something changed, so a
 * sync that finds everything in place costs the backends nothing.
 */
void
rvd_pins_sync(const uint64 *query_ids, const int *arms, int n_pins)
{
	uint32		n;
	uint32		i;
	int			p;
	bool		changed = false;

	LWLockAcquire(directives->lock, LW_EXCLUSIVE);
	n = pg_atomic_read_u32(&directives->n_decisions);
	/* pinned decisions that are no longer pins */
	for (i = 0; i < n;)
	{
		RvdDecision *d = &directives->decisions[i];
		bool		listed = false;

		for (p = 0; p < n_pins && !listed; p++)
			listed = query_ids[p] == d->query_id;
		if (d->dbid == MyDatabaseId && d->source == RVD_DECISION_PINNED && !listed)
		{
			*d = directives->decisions[--n];
			changed = true;
			continue;
		}
		i++;
	}
	for (p = 0; p < n_pins; p++)
	{
		for (i = 0; i < n; i++)
			if (directives->decisions[i].query_id == query_ids[p] && directives->decisions[i].dbid == MyDatabaseId)
				break;
		if (i == n)
		{
			if (n >= directives->max_decisions)
				break;			/* full: the engine's decisions leave room as they change */
			n++;
		}
		else if (directives->decisions[i].arm == arms[p] && directives->decisions[i].source == RVD_DECISION_PINNED)
			continue;
		directives->decisions[i].dbid = MyDatabaseId;
		directives->decisions[i].query_id = query_ids[p];
		directives->decisions[i].arm = (int16) arms[p];
		directives->decisions[i].source = RVD_DECISION_PINNED;
		directives->decisions[i].relid = InvalidOid;
		changed = true;
	}
	if (changed)
	{
		pg_atomic_write_u32(&directives->n_decisions, n);
		pg_atomic_fetch_add_u32(&directives->generation, 1);
	}
	LWLockRelease(directives->lock);
}

/* A copy of every decision, all databases (out: rvd_decisions_capacity() entries); returns how many. */
int
rvd_decisions_copy(RvdDecision *out)
{
	uint32		n;

	LWLockAcquire(directives->lock, LW_SHARED);
	n = pg_atomic_read_u32(&directives->n_decisions);
	memcpy(out, directives->decisions, sizeof(RvdDecision) * n);
	LWLockRelease(directives->lock);
	return (int) n;
}

/* The global sampling threshold (a lone atomic: no lock). */
uint32
rvd_sample_threshold(void)
{
	return pg_atomic_read_u32(&directives->sample_threshold);
}

void
rvd_set_sample_threshold(uint32 threshold)
{
	pg_atomic_write_u32(&directives->sample_threshold, threshold);
}
