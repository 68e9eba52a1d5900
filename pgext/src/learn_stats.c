/*-------------------------------------------------------------------------
 *
 * learn_stats.c
 *		The learning counters the worker publishes per table (through
 *		_ruvector_pg.publish/forget, py_pgmodule.c) and sessions read
 *		(ruvector_dag._learning_counters, sql_learn.c).
 *
 * Lock (tranche "ruvector_dag learn stats"): exclusive for the worker to
 * publish, shared to read.  LWLock waits cannot raise ERROR, and the lock
 * is never held for long, so the worker's Python callbacks take it
 * directly.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "learn_stats.h"
#include "registry.h"			/* RVD_MAX_ENROLLED */

#define RVD_LEARN_STATS_TRANCHE "ruvector_dag learn stats"

typedef struct RvdLearnStatsShared
{
	LWLock	   *lock;
	RvdLearnStats learn[RVD_MAX_ENROLLED];	/* under the lock */
} RvdLearnStatsShared;

static RvdLearnStatsShared *stats = NULL;

Size
rvd_learn_stats_shmem_size(void)
{
	return MAXALIGN(sizeof(RvdLearnStatsShared));
}

void
rvd_learn_stats_request_locks(void)
{
	RequestNamedLWLockTranche(RVD_LEARN_STATS_TRANCHE, 1);
}

/* Called by shmem.c's startup hook, under AddinShmemInitLock. */
void
rvd_learn_stats_shmem_init(void)
{
	bool		found;

	stats = ShmemInitStruct("ruvector_dag learn stats", rvd_learn_stats_shmem_size(), &found);
	if (found)
		return;
	memset(stats, 0, rvd_learn_stats_shmem_size());
	stats->lock = &GetNamedLWLockTranche(RVD_LEARN_STATS_TRANCHE)[0].lock;
}

/* The counters slot of (this database, relid), claiming a free one if create. */
static RvdLearnStats *
rvd_stats_slot(Oid relid, bool create)
{
	RvdLearnStats *free_slot = NULL;
	int			i;

	for (i = 0; i < RVD_MAX_ENROLLED; i++)
	{
		RvdLearnStats *s = &stats->learn[i];

		if (s->relid == relid && s->dbid == MyDatabaseId)
			return s;
		if (s->relid == InvalidOid && free_slot == NULL)
			free_slot = s;
	}
	if (create && free_slot != NULL)
	{
		memset(free_slot, 0, sizeof(*free_slot));
		free_slot->dbid = MyDatabaseId;
		free_slot->relid = relid;
		return free_slot;
	}
	return NULL;
}

/*
 * Publish the counters of (this database, values->relid); false when no
 * slot is free.  values->dbid is ignored.
 */
bool
rvd_learn_stats_publish(const RvdLearnStats *values)
{
	RvdLearnStats *s;

	LWLockAcquire(stats->lock, LW_EXCLUSIVE);
	s = rvd_stats_slot(values->relid, true);
	if (s != NULL)
	{
		*s = *values;
		s->dbid = MyDatabaseId;
	}
	LWLockRelease(stats->lock);
	return s != NULL;
}

/* Drop the counters of (this database, relid). */
void
rvd_learn_stats_forget(Oid relid)
{
	RvdLearnStats *s;

	LWLockAcquire(stats->lock, LW_EXCLUSIVE);
	s = rvd_stats_slot(relid, false);
	if (s != NULL)
		memset(s, 0, sizeof(*s));
	LWLockRelease(stats->lock);
}

/* Copy the counters of (this database, relid); false when there are none. */
bool
rvd_learn_stats_get(Oid relid, RvdLearnStats *out)
{
	bool		found = false;
	int			i;

	LWLockAcquire(stats->lock, LW_SHARED);
	for (i = 0; i < RVD_MAX_ENROLLED; i++)
	{
		if (stats->learn[i].relid == relid && stats->learn[i].dbid == MyDatabaseId)
		{
			*out = stats->learn[i];
			found = true;
			break;
		}
	}
	LWLockRelease(stats->lock);
	return found;
}
