/*-------------------------------------------------------------------------
 *
 * ring.c
 *		The trajectory ring: records captured by backends (capture.c) on
 *		their way to the background worker (read through _ruvector_pg,
 *		py_pgmodule.c).
 *
 * The ring is a bounded multi-producer queue: a backend reserves a sequence
 * number with a compare-and-swap on `head` (refusing, and counting a drop,
 * when head - tail = capacity), copies its record into the slot, and then
 * publishes it by writing the slot's sequence number.  Producers take no
 * lock and never wait.  Readers check the slot's sequence number before and
 * after copying (a seqlock), so they never accept a half-written record.
 *
 * Lock (tranche "ruvector_dag ring"): the consumer lock, exclusive to
 * advance `tail` (consume, reset), shared to peek: while it is held, tail
 * cannot move, so no producer can reuse a slot a peeker is reading.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "port/atomics.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "guc.h"
#include "registry.h"
#include "ring.h"

#define RVD_RING_TRANCHE "ruvector_dag ring"

typedef struct RvdRingShared
{
	LWLock	   *consumer_lock;
	int			capacity;		/* ring slots (ruvector.dag_max_trajectories) */
	/* Each counter alone on a cache line: every captured statement writes `head`. */
	union
	{
		pg_atomic_uint64 head;	/* last sequence number reserved */
		char		pad_head[PG_CACHE_LINE_SIZE];
	};
	union
	{
		pg_atomic_uint64 tail;	/* last sequence number consumed */
		char		pad_tail[PG_CACHE_LINE_SIZE];
	};
	pg_atomic_uint64 *slot_seq; /* per slot: seq of the record it holds, 0 while written */
	RvdTrajectory *ring;
} RvdRingShared;

static RvdRingShared *ring = NULL;

static Size
rvd_header_size(void)
{
	return MAXALIGN(sizeof(RvdRingShared));
}

static Size
rvd_seq_size(void)
{
	return MAXALIGN(mul_size(sizeof(pg_atomic_uint64), rvd_dag_max_trajectories));
}

Size
rvd_ring_shmem_size(void)
{
	return add_size(add_size(rvd_header_size(), rvd_seq_size()),
					mul_size(sizeof(RvdTrajectory), rvd_dag_max_trajectories));
}

void
rvd_ring_request_locks(void)
{
	RequestNamedLWLockTranche(RVD_RING_TRANCHE, 1);
}

/* Called by shmem.c's startup hook, under AddinShmemInitLock. */
void
rvd_ring_shmem_init(void)
{
	bool		found;
	char	   *base;
	int			i;

	base = ShmemInitStruct("ruvector_dag ring", rvd_ring_shmem_size(), &found);
	ring = (RvdRingShared *) base;
	if (found)
		return;

	/*
	 * Zero the whole segment, ring included: it is touched here, once,
	 * by the postmaster, instead of page-faulting inside the first
	 * queries that reach each slot.
	 */
	memset(base, 0, rvd_ring_shmem_size());
	ring->consumer_lock = &GetNamedLWLockTranche(RVD_RING_TRANCHE)[0].lock;
	ring->capacity = rvd_dag_max_trajectories;
	ring->slot_seq = (pg_atomic_uint64 *) (base + rvd_header_size());
	ring->ring = (RvdTrajectory *) (base + rvd_header_size() + rvd_seq_size());
	pg_atomic_init_u64(&ring->head, 0);
	pg_atomic_init_u64(&ring->tail, 0);
	for (i = 0; i < ring->capacity; i++)
		pg_atomic_init_u64(&ring->slot_seq[i], 0);
}

/* Whether shared memory was set up (the library was preloaded). */
bool
rvd_ring_ready(void)
{
	return ring != NULL;
}

int
rvd_ring_capacity(void)
{
	return ring->capacity;
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
	uint64		head = pg_atomic_read_u64(&ring->head);
	uint64		seq;
	int			index;
	RvdTrajectory *dst;

	for (;;)
	{
		/* A stale tail only makes us drop early, never overwrite. */
		if (head - pg_atomic_read_u64(&ring->tail) >= (uint64) ring->capacity)
		{
			rvd_registry_note_dropped(slot);
			return;
		}
		if (pg_atomic_compare_exchange_u64(&ring->head, &head, head + 1))
			break;
		/* head now holds the current value; retry */
	}
	seq = head + 1;
	index = (int) ((seq - 1) % (uint64) ring->capacity);
	dst = &ring->ring[index];

	pg_atomic_write_u64(&ring->slot_seq[index], 0);	/* being written */
	pg_write_barrier();
	memcpy(dst, rec, rvd_record_bytes(rec));
	dst->seq = seq;
	pg_write_barrier();
	pg_atomic_write_u64(&ring->slot_seq[index], seq);	/* published */
	rvd_registry_note_captured(slot);
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

	LWLockAcquire(ring->consumer_lock, consume ? LW_EXCLUSIVE : LW_SHARED);
	tail = pg_atomic_read_u64(&ring->tail);
	head = pg_atomic_read_u64(&ring->head);
	for (seq = tail + 1; seq <= head && n < max; seq++)
	{
		int			index = (int) ((seq - 1) % (uint64) ring->capacity);
		const RvdTrajectory *src = &ring->ring[index];

		if (pg_atomic_read_u64(&ring->slot_seq[index]) != seq)
			break;				/* not published yet */
		pg_read_barrier();
		if (dbid == InvalidOid || src->dbid == dbid)
		{
			memcpy(&out[n], src, rvd_record_bytes(src));
			pg_read_barrier();
			if (pg_atomic_read_u64(&ring->slot_seq[index]) != seq)
				break;			/* overwritten while copying: not ours */
			n++;
		}
		if (consume)
			tail = seq;
	}
	if (consume)
		pg_atomic_write_u64(&ring->tail, tail);
	LWLockRelease(ring->consumer_lock);
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

	LWLockAcquire(ring->consumer_lock, LW_EXCLUSIVE);
	tail = pg_atomic_read_u64(&ring->tail);
	head = pg_atomic_read_u64(&ring->head);
	for (seq = tail + 1; seq <= head && n < max; seq++)
	{
		int			index = (int) ((seq - 1) % (uint64) ring->capacity);
		const RvdTrajectory *src = &ring->ring[index];
		Oid			relid;
		uint64		query_id;
		bool		kept = false;
		int			k;

		if (pg_atomic_read_u64(&ring->slot_seq[index]) != seq)
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
	pg_atomic_write_u64(&ring->tail, tail);
	LWLockRelease(ring->consumer_lock);
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
	uint64		tail;
	uint64		head;

	LWLockAcquire(ring->consumer_lock, LW_EXCLUSIVE);
	tail = pg_atomic_read_u64(&ring->tail);
	head = pg_atomic_read_u64(&ring->head);
	while (tail < head &&
		   pg_atomic_read_u64(&ring->slot_seq[tail % (uint64) ring->capacity]) == tail + 1)
		tail++;
	pg_atomic_write_u64(&ring->tail, tail);
	LWLockRelease(ring->consumer_lock);
	rvd_registry_reset_counters();
}

/* Records of (dbid, relid) in the ring, counted without copying them. */
int64
rvd_ring_count(Oid dbid, Oid relid)
{
	uint64		seq;
	uint64		head;
	int64		n = 0;

	LWLockAcquire(ring->consumer_lock, LW_SHARED);
	head = pg_atomic_read_u64(&ring->head);
	for (seq = pg_atomic_read_u64(&ring->tail) + 1; seq <= head; seq++)
	{
		int			index = (int) ((seq - 1) % (uint64) ring->capacity);
		const RvdTrajectory *src = &ring->ring[index];

		if (pg_atomic_read_u64(&ring->slot_seq[index]) != seq)
			break;
		if (src->dbid == dbid && src->relid == relid)
			n++;
	}
	LWLockRelease(ring->consumer_lock);
	return n;
}

/* Records in the ring (reserved ones included), without a lock: a hint. */
uint64
rvd_ring_buffered(void)
{
	uint64		tail = pg_atomic_read_u64(&ring->tail);
	uint64		head = pg_atomic_read_u64(&ring->head);

	return head > tail ? head - tail : 0;
}


/* head and tail, read together under the consumer lock (ruvector_dag_ring_stats). */
void
rvd_ring_positions(uint64 *head, uint64 *tail)
{
	LWLockAcquire(ring->consumer_lock, LW_SHARED);
	*head = pg_atomic_read_u64(&ring->head);
	*tail = pg_atomic_read_u64(&ring->tail);
	LWLockRelease(ring->consumer_lock);
}
