/*-------------------------------------------------------------------------
 *
 * shmem.c
 *		Shared memory: the registry of enrolled tables and the trajectory ring.
 *
 * Both are requested at preload (shmem_request_hook, PostgreSQL 15+) and
 * initialised once by the postmaster, so every backend and the background
 * worker see the same enrollments and the same captured trajectories.  The
 * lock discipline is documented at RvdShared in ruvector_dag.h.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"

#include "ruvector_dag.h"

RvdShared  *rvd_shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static Size
rvd_shmem_size(void)
{
	return add_size(offsetof(RvdShared, ring),
					mul_size(sizeof(RvdTrajectory), rvd_dag_max_trajectories));
}

static void
rvd_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(rvd_shmem_size());
	RequestNamedLWLockTranche("ruvector_dag", 2);
}

static void
rvd_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	rvd_shared = ShmemInitStruct("ruvector_dag", rvd_shmem_size(), &found);
	if (!found)
	{
		LWLockPadded *locks = GetNamedLWLockTranche("ruvector_dag");
		int			i;

		/* Only the header is initialised; ring slots are written before read. */
		memset(rvd_shared, 0, offsetof(RvdShared, ring));
		rvd_shared->registry_lock = &locks[0].lock;
		rvd_shared->ring_lock = &locks[1].lock;
		pg_atomic_init_u32(&rvd_shared->generation, 1);
		rvd_shared->capacity = rvd_dag_max_trajectories;
		for (i = 0; i < RVD_MAX_ENROLLED; i++)
		{
			pg_atomic_init_u64(&rvd_shared->tables[i].seen, 0);
			pg_atomic_init_u64(&rvd_shared->tables[i].stored, 0);
			pg_atomic_init_u64(&rvd_shared->tables[i].dropped, 0);
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

void
rvd_shmem_init_hooks(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = rvd_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = rvd_shmem_startup;
}

/*
 * Is (dbid, relid) enrolled?  Sets *slot to its registry index.  Callers on
 * the query path use capture.c's private cache instead of this.
 */
bool
rvd_registry_lookup(Oid dbid, Oid relid, int *slot)
{
	int			i;
	bool		found = false;

	LWLockAcquire(rvd_shared->registry_lock, LW_SHARED);
	for (i = 0; i < RVD_MAX_ENROLLED; i++)
	{
		if (rvd_shared->tables[i].relid == relid && rvd_shared->tables[i].dbid == dbid)
		{
			if (slot)
				*slot = i;
			found = true;
			break;
		}
	}
	LWLockRelease(rvd_shared->registry_lock);
	return found;
}

/* Add an enrollment; false if the registry is full.  Counters restart at 0. */
bool
rvd_registry_add(Oid dbid, Oid relid)
{
	int			i;
	int			free_slot = -1;

	LWLockAcquire(rvd_shared->registry_lock, LW_EXCLUSIVE);
	for (i = 0; i < RVD_MAX_ENROLLED; i++)
	{
		RvdTableEntry *e = &rvd_shared->tables[i];

		if (e->relid == relid && e->dbid == dbid)
		{
			LWLockRelease(rvd_shared->registry_lock);
			return true;
		}
		if (e->relid == InvalidOid && free_slot < 0)
			free_slot = i;
	}
	if (free_slot >= 0)
	{
		RvdTableEntry *e = &rvd_shared->tables[free_slot];

		pg_atomic_write_u64(&e->seen, 0);
		pg_atomic_write_u64(&e->stored, 0);
		pg_atomic_write_u64(&e->dropped, 0);
		e->dbid = dbid;
		e->relid = relid;
		pg_atomic_fetch_add_u32(&rvd_shared->generation, 1);
	}
	LWLockRelease(rvd_shared->registry_lock);
	return free_slot >= 0;
}

void
rvd_registry_remove(Oid dbid, Oid relid)
{
	int			i;

	LWLockAcquire(rvd_shared->registry_lock, LW_EXCLUSIVE);
	for (i = 0; i < RVD_MAX_ENROLLED; i++)
	{
		RvdTableEntry *e = &rvd_shared->tables[i];

		if (e->relid == relid && e->dbid == dbid)
		{
			e->relid = InvalidOid;
			e->dbid = InvalidOid;
			pg_atomic_fetch_add_u32(&rvd_shared->generation, 1);
		}
	}
	LWLockRelease(rvd_shared->registry_lock);
}

/*
 * Append a record, or count it as dropped when the ring is full.  `slot` is
 * the registry index of the table the record belongs to.  Never waits for
 * the consumer.
 */
void
rvd_ring_push(const RvdTrajectory *rec, int slot)
{
	RvdTableEntry *e = &rvd_shared->tables[slot];
	bool		stored = false;

	LWLockAcquire(rvd_shared->ring_lock, LW_EXCLUSIVE);
	if (rvd_shared->head - rvd_shared->tail < (uint64) rvd_shared->capacity)
	{
		uint64		seq = ++rvd_shared->head;
		RvdTrajectory *dst = &rvd_shared->ring[(seq - 1) % rvd_shared->capacity];

		/* Only the used part of the node array is copied. */
		memcpy(dst, rec, offsetof(RvdTrajectory, nodes) + sizeof(RvdPlanNode) * rec->n_nodes);
		dst->seq = seq;
		stored = true;
	}
	LWLockRelease(rvd_shared->ring_lock);

	if (stored)
		pg_atomic_fetch_add_u64(&e->stored, 1);
	else
		pg_atomic_fetch_add_u64(&e->dropped, 1);
}

/* Consume up to max records, oldest first; returns how many. */
int
rvd_ring_pop(RvdTrajectory *out, int max)
{
	int			n = 0;

	LWLockAcquire(rvd_shared->ring_lock, LW_EXCLUSIVE);
	while (n < max && rvd_shared->tail < rvd_shared->head)
	{
		uint64		seq = ++rvd_shared->tail;
		const RvdTrajectory *src = &rvd_shared->ring[(seq - 1) % rvd_shared->capacity];

		memcpy(&out[n], src, offsetof(RvdTrajectory, nodes) + sizeof(RvdPlanNode) * src->n_nodes);
		n++;
	}
	LWLockRelease(rvd_shared->ring_lock);
	return n;
}
