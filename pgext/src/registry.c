/*-------------------------------------------------------------------------
 *
 * registry.c
 *		The registry of enrolled tables, in shared memory, and this
 *		backend's private copy of it.
 *
 * Written only when an enrollment commits (enroll.c) or when the worker
 * reloads the committed enrollments (worker.c); read by every statement
 * (capture.c, plan.c) through a private copy that is refreshed only when
 * the shared `generation` moved, so the query path pays one atomic read and
 * takes no lock.  The private copy is sorted by relid: a statement's range
 * table is looked up by binary search, so thousands of enrolled tables cost
 * a statement a few comparisons per relation it reads.
 *
 * Size: ruvector.max_enrolled_tables slots (all databases), fixed at server
 * start.  A slot is freed as soon as its enrollment ends (disenrolled, table
 * dropped, database dropped) and reused by the next enrollment; enrolling
 * past the size is refused at enrollment (sql_enroll.c), never found on an
 * unrelated user's statement.
 *
 * Each table also carries the counters of the statements that read it, in
 * the manner of pg_stat_statements (docs/operations.md "Capture counters"):
 * every execution, and which of them were captured or dropped (the rest
 * were left out by sampling), bumped without a lock by capture.c and ring.c.
 *
 * Lock (tranche "ruvector_dag registry"): shared to read the table
 * registry, exclusive to change it; changes also bump `generation` so that
 * backends refresh their private copy without taking the lock on every
 * query.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "port/atomics.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"		/* oid_cmp */
#include "utils/memutils.h"

#include "guc.h"
#include "registry.h"

#define RVD_REGISTRY_TRANCHE "ruvector_dag registry"

/*
 * One enrolled table.  Padded to a cache line: the counters of different
 * tables are bumped by different backends.  Left out by sampling =
 * executions - captured - dropped, so it is not kept.
 */
typedef union RvdTableEntry
{
	struct
	{
		Oid			dbid;
		Oid			relid;		/* InvalidOid: free slot */
		pg_atomic_uint64 executions;	/* statements run that read it (ExecutorEnd) */
		pg_atomic_uint64 captured;	/* ... whose record reached the ring */
		pg_atomic_uint64 dropped;	/* ... chosen for capture, but the ring was full */
	};
	char		pad[PG_CACHE_LINE_SIZE];
} RvdTableEntry;

typedef struct RvdRegistryShared
{
	LWLock	   *lock;
	bool		loaded;			/* the worker reloaded enrollments */
	/* Alone on its cache line: every statement reads it. */
	union
	{
		pg_atomic_uint32 generation;
		char		pad_generation[PG_CACHE_LINE_SIZE];
	};
	int			size;			/* ruvector.max_enrolled_tables at server start */
	RvdTableEntry tables[FLEXIBLE_ARRAY_MEMBER];
} RvdRegistryShared;

static RvdRegistryShared *registry = NULL;

/*
 * Set around the worker's trials (trials.c): the trial's statement is the
 * worker's, not a user's, so it is neither captured nor steered.  It lives
 * here, beside rvd_capture_active(), because that is the one gate plan.c and
 * capture.c both ask, and the layer both reach.
 */
static bool capture_suspended = false;

/* An enrolled table of this database in the private copy, see refresh_cache(). */
typedef struct RvdCachedTable
{
	Oid			relid;
	int			slot;
} RvdCachedTable;

/* Private copy of the enrollments of this database, sorted by relid. */
static uint32 cache_generation = 0;
static int	cache_count = 0;
static RvdCachedTable *cache_tables = NULL;	/* registry->size entries, TopMemoryContext */

Size
rvd_registry_shmem_size(void)
{
	return add_size(offsetof(RvdRegistryShared, tables),
					mul_size(sizeof(RvdTableEntry), rvd_max_enrolled_tables));
}

/* Slots in the registry (ruvector.max_enrolled_tables as the server started). */
int
rvd_registry_size(void)
{
	return registry->size;
}

void
rvd_registry_request_locks(void)
{
	RequestNamedLWLockTranche(RVD_REGISTRY_TRANCHE, 1);
}

/* Called by shmem.c's startup hook, under AddinShmemInitLock. */
void
rvd_registry_shmem_init(void)
{
	bool		found;
	int			i;

	registry = ShmemInitStruct("ruvector_dag registry", rvd_registry_shmem_size(), &found);
	if (found)
		return;
	memset(registry, 0, rvd_registry_shmem_size());
	registry->lock = &GetNamedLWLockTranche(RVD_REGISTRY_TRANCHE)[0].lock;
	registry->size = rvd_max_enrolled_tables;
	pg_atomic_init_u32(&registry->generation, 1);
	for (i = 0; i < registry->size; i++)
	{
		pg_atomic_init_u64(&registry->tables[i].executions, 0);
		pg_atomic_init_u64(&registry->tables[i].captured, 0);
		pg_atomic_init_u64(&registry->tables[i].dropped, 0);
	}
}

/*
 * Is (dbid, relid) enrolled?  Sets *slot to its registry index.  Callers on
 * the query path use the private copy below instead of this.
 */
bool
rvd_registry_lookup(Oid dbid, Oid relid, int *slot)
{
	int			i;
	bool		found = false;

	LWLockAcquire(registry->lock, LW_SHARED);
	for (i = 0; i < registry->size; i++)
	{
		if (registry->tables[i].relid == relid && registry->tables[i].dbid == dbid)
		{
			if (slot)
				*slot = i;
			found = true;
			break;
		}
	}
	LWLockRelease(registry->lock);
	return found;
}

/* Add an enrollment; false if the registry is full.  Counters restart at 0. */
bool
rvd_registry_add(Oid dbid, Oid relid)
{
	int			i;
	int			free_slot = -1;

	LWLockAcquire(registry->lock, LW_EXCLUSIVE);
	for (i = 0; i < registry->size; i++)
	{
		RvdTableEntry *e = &registry->tables[i];

		if (e->relid == relid && e->dbid == dbid)
		{
			LWLockRelease(registry->lock);
			return true;
		}
		if (e->relid == InvalidOid && free_slot < 0)
			free_slot = i;
	}
	if (free_slot >= 0)
	{
		RvdTableEntry *e = &registry->tables[free_slot];

		pg_atomic_write_u64(&e->executions, 0);
		pg_atomic_write_u64(&e->captured, 0);
		pg_atomic_write_u64(&e->dropped, 0);
		e->dbid = dbid;
		e->relid = relid;
		pg_atomic_fetch_add_u32(&registry->generation, 1);
	}
	LWLockRelease(registry->lock);
	return free_slot >= 0;
}

/* Forget (dbid, relid), or every table of dbid when relid is InvalidOid. */
void
rvd_registry_remove(Oid dbid, Oid relid)
{
	int			i;

	LWLockAcquire(registry->lock, LW_EXCLUSIVE);
	for (i = 0; i < registry->size; i++)
	{
		RvdTableEntry *e = &registry->tables[i];

		if (e->dbid == dbid && e->relid != InvalidOid && (relid == InvalidOid || e->relid == relid))
		{
			e->relid = InvalidOid;
			e->dbid = InvalidOid;
			pg_atomic_fetch_add_u32(&registry->generation, 1);
		}
	}
	LWLockRelease(registry->lock);
}

/*
 * Forget the tables of dbid that are not among relids[0..n-1] (the worker's
 * sync from ruvector_dag.enrolled_tables: an enrollment removed on the
 * primary, replayed on a standby, runs no commit callback there).  Returns
 * how many were forgotten.
 */
int
rvd_registry_keep_only(Oid dbid, const Oid *relids, int n)
{
	int			i;
	int			removed = 0;
	Oid		   *sorted = palloc(sizeof(Oid) * Max(n, 1));

	/* Sorted first: thousands of enrollments are checked in n log n, not n^2, every few seconds. */
	memcpy(sorted, relids, sizeof(Oid) * n);
	qsort(sorted, n, sizeof(Oid), oid_cmp);
	LWLockAcquire(registry->lock, LW_EXCLUSIVE);
	for (i = 0; i < registry->size; i++)
	{
		RvdTableEntry *e = &registry->tables[i];

		if (e->dbid != dbid || e->relid == InvalidOid)
			continue;
		if (bsearch(&e->relid, sorted, n, sizeof(Oid), oid_cmp) == NULL)
		{
			e->relid = InvalidOid;
			e->dbid = InvalidOid;
			removed++;
		}
	}
	if (removed > 0)
		pg_atomic_fetch_add_u32(&registry->generation, 1);
	LWLockRelease(registry->lock);
	pfree(sorted);
	return removed;
}

/* Enrolled tables, all databases. */
int
rvd_registry_count(void)
{
	int			i;
	int			n = 0;

	LWLockAcquire(registry->lock, LW_SHARED);
	for (i = 0; i < registry->size; i++)
		if (registry->tables[i].relid != InvalidOid)
			n++;
	LWLockRelease(registry->lock);
	return n;
}

/* Bumped by every enrollment change. */
uint32
rvd_registry_generation(void)
{
	return pg_atomic_read_u32(&registry->generation);
}

/* Whether the worker reloaded the committed enrollments since the server started. */
bool
rvd_registry_loaded(void)
{
	return registry->loaded;
}

void
rvd_registry_set_loaded(void)
{
	registry->loaded = true;
}

/* The table in a registry slot (read without the lock, as capture does). */
Oid
rvd_registry_relid(int slot)
{
	return registry->tables[slot].relid;
}

void
rvd_registry_note_execution(int slot)
{
	pg_atomic_fetch_add_u64(&registry->tables[slot].executions, 1);
}

void
rvd_registry_note_captured(int slot)
{
	pg_atomic_fetch_add_u64(&registry->tables[slot].captured, 1);
}

void
rvd_registry_note_dropped(int slot)
{
	pg_atomic_fetch_add_u64(&registry->tables[slot].dropped, 1);
}

void
rvd_registry_reset_counters(void)
{
	int			i;

	for (i = 0; i < registry->size; i++)
	{
		pg_atomic_write_u64(&registry->tables[i].executions, 0);
		pg_atomic_write_u64(&registry->tables[i].captured, 0);
		pg_atomic_write_u64(&registry->tables[i].dropped, 0);
	}
}

/*
 * Copy the enrolled tables of this database and their counters (out: an
 * array of rvd_registry_size() entries); returns how many.  Copied under the
 * lock: catalog lookups come after it is released.  captured and dropped
 * are read before executions, which is bumped first, so a copy never shows
 * more captured and dropped statements than executions.
 */
int
rvd_registry_counters(RvdTableCounters *out)
{
	int			n = 0;
	int			i;

	LWLockAcquire(registry->lock, LW_SHARED);
	for (i = 0; i < registry->size; i++)
	{
		RvdTableEntry *e = &registry->tables[i];

		if (e->relid == InvalidOid || e->dbid != MyDatabaseId)
			continue;
		out[n].relid = e->relid;
		out[n].captured = pg_atomic_read_u64(&e->captured);
		out[n].dropped = pg_atomic_read_u64(&e->dropped);
		pg_read_barrier();
		out[n].executions = pg_atomic_read_u64(&e->executions);
		n++;
	}
	LWLockRelease(registry->lock);
	return n;
}

static int
cached_table_cmp(const void *a, const void *b)
{
	Oid			x = ((const RvdCachedTable *) a)->relid;
	Oid			y = ((const RvdCachedTable *) b)->relid;

	return x < y ? -1 : x > y;
}

/*
 * Re-read the registry only when its generation moved.  The copy's array is
 * allocated once, at the registry's size, before the lock is taken (an
 * allocation failure is then an ordinary error of the statement, raised
 * before it runs).
 */
static void
refresh_cache(void)
{
	uint32		gen = pg_atomic_read_u32(&registry->generation);
	int			i;

	if (gen == cache_generation)
		return;
	if (cache_tables == NULL)
		cache_tables = MemoryContextAlloc(TopMemoryContext, sizeof(RvdCachedTable) * registry->size);
	LWLockAcquire(registry->lock, LW_SHARED);
	gen = pg_atomic_read_u32(&registry->generation);
	cache_count = 0;
	for (i = 0; i < registry->size; i++)
	{
		RvdTableEntry *e = &registry->tables[i];

		if (e->relid != InvalidOid && e->dbid == MyDatabaseId)
		{
			cache_tables[cache_count].relid = e->relid;
			cache_tables[cache_count].slot = i;
			cache_count++;
		}
	}
	cache_generation = gen;
	LWLockRelease(registry->lock);
	qsort(cache_tables, cache_count, sizeof(RvdCachedTable), cached_table_cmp);
}

/*
 * Whether anything is enrolled in this database (and capture is on): the
 * one question capture.c and plan.c ask of every statement, answered from
 * the private copy.
 */
bool
rvd_capture_active(void)
{
	if (!rvd_neural_dag_enabled || registry == NULL || IsParallelWorker() || capture_suspended)
		return false;
	refresh_cache();
	return cache_count > 0;
}

/* Suspend (or resume) capture and steering in this backend: a trial runs. */
void
rvd_suspend_capture(bool suspend)
{
	capture_suspended = suspend;
}

bool
rvd_capture_is_suspended(void)
{
	return capture_suspended;
}

/* Registry slot of the first enrolled relation in a range table, or -1. */
int
rvd_rtable_enrolled_slot(List *rtable)
{
	ListCell   *lc;

	foreach(lc, rtable)
	{
		RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);
		RvdCachedTable key;
		RvdCachedTable *found;

		if (rte->rtekind != RTE_RELATION)
			continue;
		key.relid = rte->relid;
		found = bsearch(&key, cache_tables, cache_count, sizeof(RvdCachedTable), cached_table_cmp);
		if (found != NULL)
			return found->slot;
	}
	return -1;
}
