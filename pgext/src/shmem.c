/*-------------------------------------------------------------------------
 *
 * shmem.c
 *		Shared memory: requests and sets up each subsystem's part, in the
 *		manner of PostgreSQL's ipci.c.
 *
 * Each shared subsystem owns its struct, its lock(s) and its
 * *_shmem_size() / *_shmem_init() pair (and *_request_locks() for its named
 * LWLock tranche, so that wait events name the subsystem):
 *
 *	registry.c		enrolled tables				"ruvector_dag registry"
 *	ring.c			the trajectory ring			"ruvector_dag ring"
 *	directives.c	decisions, capture rules	"ruvector_dag directives"
 *	learn_stats.c	published learning counters	"ruvector_dag learn stats"
 *	trials.c		statements offered			"ruvector_dag statements"
 *	request.c		the request slot			(a spinlock)
 *
 * Everything is requested at preload (shmem_request_hook, PostgreSQL 15+)
 * and initialised once by the postmaster, so every backend and the
 * background worker see the same enrollments, captured trajectories and
 * directives.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "directives.h"
#include "learn_stats.h"
#include "registry.h"
#include "request.h"
#include "ring.h"
#include "shmem.h"
#include "trials.h"

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static Size
rvd_shmem_size(void)
{
	Size		size = 0;

	size = add_size(size, rvd_registry_shmem_size());
	size = add_size(size, rvd_ring_shmem_size());
	size = add_size(size, rvd_directives_shmem_size());
	size = add_size(size, rvd_learn_stats_shmem_size());
	size = add_size(size, rvd_statements_shmem_size());
	size = add_size(size, rvd_request_shmem_size());
	return size;
}

static void
rvd_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(rvd_shmem_size());
	rvd_registry_request_locks();
	rvd_ring_request_locks();
	rvd_directives_request_locks();
	rvd_learn_stats_request_locks();
	rvd_statements_request_locks();
}

static void
rvd_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	rvd_registry_shmem_init();
	rvd_ring_shmem_init();
	rvd_directives_shmem_init();
	rvd_learn_stats_shmem_init();
	rvd_statements_shmem_init();
	rvd_request_shmem_init();
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
