/*-------------------------------------------------------------------------
 *
 * learn_stats.c
 *		The learning counters the worker publishes per table (through
 *		_ruvector_pg.publish/forget, py_pgmodule.c) and sessions read
 *		(ruvector_dag._learning_counters, sql_learn.c).
 *
 * Lock (tranche "ruvector_dag learn stats"): exclusive for the worker to
 * publish, shared to read.  The entries are a dynahash table in shared
 * memory, keyed by (database, table), sized by ruvector.max_enrolled_tables.  LWLock waits cannot raise ERROR, and the lock
 * is never held for long, so the worker's Python callbacks take it
 * directly.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"

#include "guc.h"
#include "learn_stats.h"

#define RVD_LEARN_STATS_TRANCHE "ruvector_dag learn stats"

/* (dbid, relid): the first two fields of RvdLearnStats, its key in the hash table. */
typedef struct RvdLearnStatsKey
{
	Oid			dbid;
	Oid			relid;
} RvdLearnStatsKey;

StaticAssertDecl(offsetof(RvdLearnStats, relid) == offsetof(RvdLearnStatsKey, relid),
				 "RvdLearnStats must start with its key");

static LWLock *stats_lock = NULL;
static HTAB *stats_hash = NULL;	/* RvdLearnStats by (dbid, relid), under stats_lock */

/* A table's entry per enrolled table: ruvector.max_enrolled_tables of them. */
Size
rvd_learn_stats_shmem_size(void)
{
	return hash_estimate_size(rvd_max_enrolled_tables, sizeof(RvdLearnStats));
}

void
rvd_learn_stats_request_locks(void)
{
	RequestNamedLWLockTranche(RVD_LEARN_STATS_TRANCHE, 1);
}

/* Called by shmem.c's startup hook, under AddinShmemInitLock (also in each backend under EXEC_BACKEND). */
void
rvd_learn_stats_shmem_init(void)
{
	HASHCTL		info;

	stats_lock = &GetNamedLWLockTranche(RVD_LEARN_STATS_TRANCHE)[0].lock;
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(RvdLearnStatsKey);
	info.entrysize = sizeof(RvdLearnStats);
	stats_hash = ShmemInitHash("ruvector_dag learn stats", rvd_max_enrolled_tables, rvd_max_enrolled_tables,
							   &info, HASH_ELEM | HASH_BLOBS);
}

/*
 * Publish a table's counters (the worker, after each batch).  False if the
 * table has no entry and none is left (more tables learning than the
 * registry holds: cannot happen while the worker forgets the tables that
 * leave it); HASH_ENTER_NULL never raises an error in the worker's callback.
 */
bool
rvd_learn_stats_publish(const RvdLearnStats *values)
{
	RvdLearnStatsKey key = {MyDatabaseId, values->relid};
	RvdLearnStats *s;

	LWLockAcquire(stats_lock, LW_EXCLUSIVE);
	s = hash_search(stats_hash, &key, HASH_ENTER_NULL, NULL);
	if (s != NULL)
	{
		*s = *values;
		s->dbid = MyDatabaseId;
	}
	LWLockRelease(stats_lock);
	return s != NULL;
}

void
rvd_learn_stats_forget(Oid relid)
{
	RvdLearnStatsKey key = {MyDatabaseId, relid};

	LWLockAcquire(stats_lock, LW_EXCLUSIVE);
	(void) hash_search(stats_hash, &key, HASH_REMOVE, NULL);
	LWLockRelease(stats_lock);
}

bool
rvd_learn_stats_get(Oid relid, RvdLearnStats *out)
{
	RvdLearnStatsKey key = {MyDatabaseId, relid};
	RvdLearnStats *s;

	LWLockAcquire(stats_lock, LW_SHARED);
	s = hash_search(stats_hash, &key, HASH_FIND, NULL);
	if (s != NULL)
		*out = *s;
	LWLockRelease(stats_lock);
	return s != NULL;
}
