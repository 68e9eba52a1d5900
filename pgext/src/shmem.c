/*-------------------------------------------------------------------------
 *
 * shmem.c
 *		Shared memory: the registry of enrolled tables and the trajectory ring.
 *
 * Both are requested at preload (shmem_request_hook, PostgreSQL 15+) and
 * initialised once by the postmaster, so every backend and the background
 * worker see the same enrollments and the same captured trajectories.  The
 * ring protocol and the lock discipline are documented at RvdShared in
 * ruvector_dag.h.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"

#include "ruvector_dag.h"

RvdShared  *rvd_shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static Size
rvd_header_size(void)
{
	return MAXALIGN(sizeof(RvdShared));
}

static Size
rvd_seq_size(void)
{
	return MAXALIGN(mul_size(sizeof(pg_atomic_uint64), rvd_dag_max_trajectories));
}

static Size
rvd_shmem_size(void)
{
	return add_size(add_size(rvd_header_size(), rvd_seq_size()),
					mul_size(sizeof(RvdTrajectory), rvd_dag_max_trajectories));
}

static void
rvd_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(rvd_shmem_size());
	RequestNamedLWLockTranche("ruvector_dag", 5);
}

static void
rvd_shmem_startup(void)
{
	bool		found;
	char	   *base;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	base = ShmemInitStruct("ruvector_dag", rvd_shmem_size(), &found);
	rvd_shared = (RvdShared *) base;
	if (!found)
	{
		LWLockPadded *locks = GetNamedLWLockTranche("ruvector_dag");
		int			i;

		/*
		 * Zero the whole segment, ring included: it is touched here, once,
		 * by the postmaster, instead of page-faulting inside the first
		 * queries that reach each slot.
		 */
		memset(base, 0, rvd_shmem_size());
		rvd_shared->registry_lock = &locks[0].lock;
		rvd_shared->consumer_lock = &locks[1].lock;
		rvd_shared->stats_lock = &locks[2].lock;
		rvd_shared->decisions_lock = &locks[3].lock;
		rvd_shared->statements_lock = &locks[4].lock;
		pg_atomic_init_u32(&rvd_shared->n_decisions, 0);
		SpinLockInit(&rvd_shared->request.mutex);
		ConditionVariableInit(&rvd_shared->request.cv);
		rvd_shared->request.state = RVD_REQ_FREE;
		rvd_shared->capacity = rvd_dag_max_trajectories;
		rvd_shared->slot_seq = (pg_atomic_uint64 *) (base + rvd_header_size());
		rvd_shared->ring = (RvdTrajectory *) (base + rvd_header_size() + rvd_seq_size());
		pg_atomic_init_u32(&rvd_shared->generation, 1);
		pg_atomic_init_u32(&rvd_shared->steer_generation, 1);
		pg_atomic_init_u32(&rvd_shared->sample_threshold, PG_UINT32_MAX);
		pg_atomic_init_u64(&rvd_shared->head, 0);
		pg_atomic_init_u64(&rvd_shared->tail, 0);
		for (i = 0; i < RVD_MAX_ENROLLED; i++)
		{
			pg_atomic_init_u64(&rvd_shared->tables[i].stored, 0);
			pg_atomic_init_u64(&rvd_shared->tables[i].dropped, 0);
		}
		for (i = 0; i < rvd_shared->capacity; i++)
			pg_atomic_init_u64(&rvd_shared->slot_seq[i], 0);
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

		pg_atomic_write_u64(&e->stored, 0);
		pg_atomic_write_u64(&e->dropped, 0);
		e->dbid = dbid;
		e->relid = relid;
		pg_atomic_fetch_add_u32(&rvd_shared->generation, 1);
	}
	LWLockRelease(rvd_shared->registry_lock);
	return free_slot >= 0;
}

/* Forget (dbid, relid), or every table of dbid when relid is InvalidOid. */
void
rvd_registry_remove(Oid dbid, Oid relid)
{
	int			i;

	LWLockAcquire(rvd_shared->registry_lock, LW_EXCLUSIVE);
	for (i = 0; i < RVD_MAX_ENROLLED; i++)
	{
		RvdTableEntry *e = &rvd_shared->tables[i];

		if (e->dbid == dbid && e->relid != InvalidOid && (relid == InvalidOid || e->relid == relid))
		{
			e->relid = InvalidOid;
			e->dbid = InvalidOid;
			pg_atomic_fetch_add_u32(&rvd_shared->generation, 1);
		}
	}
	LWLockRelease(rvd_shared->registry_lock);
}

static Size
rvd_record_bytes(const RvdTrajectory *rec)
{
	return offsetof(RvdTrajectory, nodes) + sizeof(RvdPlanNode) * Min(rec->n_nodes, RVD_MAX_PLAN_NODES);
}

/*
 * Append a record, or count it as dropped when the ring is full.  `slot` is
 * the registry index of the table the record belongs to.  Lock-free: never
 * waits for the consumer or for other producers.
 */
void
rvd_ring_push(const RvdTrajectory *rec, int slot)
{
	RvdTableEntry *e = &rvd_shared->tables[slot];
	uint64		head = pg_atomic_read_u64(&rvd_shared->head);
	uint64		seq;
	int			index;
	RvdTrajectory *dst;

	for (;;)
	{
		/* A stale tail only makes us drop early, never overwrite. */
		if (head - pg_atomic_read_u64(&rvd_shared->tail) >= (uint64) rvd_shared->capacity)
		{
			pg_atomic_fetch_add_u64(&e->dropped, 1);
			return;
		}
		if (pg_atomic_compare_exchange_u64(&rvd_shared->head, &head, head + 1))
			break;
		/* head now holds the current value; retry */
	}
	seq = head + 1;
	index = (int) ((seq - 1) % (uint64) rvd_shared->capacity);
	dst = &rvd_shared->ring[index];

	pg_atomic_write_u64(&rvd_shared->slot_seq[index], 0);	/* being written */
	pg_write_barrier();
	memcpy(dst, rec, rvd_record_bytes(rec));
	dst->seq = seq;
	pg_write_barrier();
	pg_atomic_write_u64(&rvd_shared->slot_seq[index], seq);	/* published */
	pg_atomic_fetch_add_u64(&e->stored, 1);
}

/*
 * Copy up to max published records of database dbid (InvalidOid: any),
 * oldest first.  consume = true advances the tail past what was read (and
 * past other databases' records); otherwise the ring is left as it is.
 * Stops at a record still being written.
 */
int
rvd_ring_read(RvdTrajectory *out, int max, bool consume, Oid dbid)
{
	uint64		tail;
	uint64		head;
	uint64		seq;
	int			n = 0;

	LWLockAcquire(rvd_shared->consumer_lock, consume ? LW_EXCLUSIVE : LW_SHARED);
	tail = pg_atomic_read_u64(&rvd_shared->tail);
	head = pg_atomic_read_u64(&rvd_shared->head);
	for (seq = tail + 1; seq <= head && n < max; seq++)
	{
		int			index = (int) ((seq - 1) % (uint64) rvd_shared->capacity);
		const RvdTrajectory *src = &rvd_shared->ring[index];

		if (pg_atomic_read_u64(&rvd_shared->slot_seq[index]) != seq)
			break;				/* not published yet */
		pg_read_barrier();
		if (dbid == InvalidOid || src->dbid == dbid)
		{
			memcpy(&out[n], src, rvd_record_bytes(src));
			pg_read_barrier();
			if (pg_atomic_read_u64(&rvd_shared->slot_seq[index]) != seq)
				break;			/* overwritten while copying: not ours */
			n++;
		}
		if (consume)
			tail = seq;
	}
	if (consume)
		pg_atomic_write_u64(&rvd_shared->tail, tail);
	LWLockRelease(rvd_shared->consumer_lock);
	return n;
}

/*
 * Consume up to max records of database dbid without copying them (the
 * worker's learning budget is spent), writing each one's relation to
 * relids[].  Stops before a record whose query id is in keep[] (the worker
 * reads those: they are the queries being steered) and at a record still
 * being written.  Other databases' records are passed over, as by a
 * consuming rvd_ring_read().  Returns the number of relids written.
 */
int
rvd_ring_skip(Oid *relids, int max, Oid dbid, const uint64 *keep, int n_keep)
{
	uint64		tail;
	uint64		head;
	uint64		seq;
	int			n = 0;

	LWLockAcquire(rvd_shared->consumer_lock, LW_EXCLUSIVE);
	tail = pg_atomic_read_u64(&rvd_shared->tail);
	head = pg_atomic_read_u64(&rvd_shared->head);
	for (seq = tail + 1; seq <= head && n < max; seq++)
	{
		int			index = (int) ((seq - 1) % (uint64) rvd_shared->capacity);
		const RvdTrajectory *src = &rvd_shared->ring[index];
		Oid			relid;
		uint64		query_id;
		bool		kept = false;
		int			k;

		if (pg_atomic_read_u64(&rvd_shared->slot_seq[index]) != seq)
			break;				/* not published yet */
		pg_read_barrier();
		relid = src->relid;
		query_id = src->query_id;
		if (src->dbid == dbid)
		{
			for (k = 0; k < n_keep && !kept; k++)
				kept = keep[k] == query_id;
			if (kept)
				break;
			relids[n++] = relid;
		}
		tail = seq;
	}
	pg_atomic_write_u64(&rvd_shared->tail, tail);
	LWLockRelease(rvd_shared->consumer_lock);
	return n;
}

/*
 * Drop everything buffered and zero the counters.  Like a consumer, the
 * tail stops before a record still being written, so a slot is never
 * handed to a new producer while an old one is still copying into it.
 */
void
rvd_ring_reset(void)
{
	int			i;
	uint64		tail;
	uint64		head;

	LWLockAcquire(rvd_shared->consumer_lock, LW_EXCLUSIVE);
	tail = pg_atomic_read_u64(&rvd_shared->tail);
	head = pg_atomic_read_u64(&rvd_shared->head);
	while (tail < head &&
		   pg_atomic_read_u64(&rvd_shared->slot_seq[tail % (uint64) rvd_shared->capacity]) == tail + 1)
		tail++;
	pg_atomic_write_u64(&rvd_shared->tail, tail);
	LWLockRelease(rvd_shared->consumer_lock);
	for (i = 0; i < RVD_MAX_ENROLLED; i++)
	{
		pg_atomic_write_u64(&rvd_shared->tables[i].stored, 0);
		pg_atomic_write_u64(&rvd_shared->tables[i].dropped, 0);
	}
}

/* Records of (dbid, relid) in the ring, counted without copying them. */
int64
rvd_ring_count(Oid dbid, Oid relid)
{
	uint64		seq;
	uint64		head;
	int64		n = 0;

	LWLockAcquire(rvd_shared->consumer_lock, LW_SHARED);
	head = pg_atomic_read_u64(&rvd_shared->head);
	for (seq = pg_atomic_read_u64(&rvd_shared->tail) + 1; seq <= head; seq++)
	{
		int			index = (int) ((seq - 1) % (uint64) rvd_shared->capacity);
		const RvdTrajectory *src = &rvd_shared->ring[index];

		if (pg_atomic_read_u64(&rvd_shared->slot_seq[index]) != seq)
			break;
		if (src->dbid == dbid && src->relid == relid)
			n++;
	}
	LWLockRelease(rvd_shared->consumer_lock);
	return n;
}

/* Records in the ring (reserved ones included), without a lock: a hint. */
uint64
rvd_ring_buffered(void)
{
	uint64		tail = pg_atomic_read_u64(&rvd_shared->tail);
	uint64		head = pg_atomic_read_u64(&rvd_shared->head);

	return head > tail ? head - tail : 0;
}

/*
 * The worker announces itself so that sessions can wake it (requests) and
 * can tell a missing worker from a slow one.
 */
void
rvd_worker_set_running(bool running)
{
	SpinLockAcquire(&rvd_shared->request.mutex);
	rvd_shared->worker_pid = running ? MyProcPid : 0;
	rvd_shared->worker_latch = running ? &MyProc->procLatch : NULL;
	SpinLockRelease(&rvd_shared->request.mutex);
}

Latch *
rvd_worker_latch(void)
{
	Latch	   *latch;

	SpinLockAcquire(&rvd_shared->request.mutex);
	latch = rvd_shared->worker_latch;
	SpinLockRelease(&rvd_shared->request.mutex);
	return latch;
}
