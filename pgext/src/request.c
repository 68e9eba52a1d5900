/*-------------------------------------------------------------------------
 *
 * request.c
 *		The request slot through which sessions ask the worker for work
 *		(sql_learn.c posts, worker.c serves), and the worker's presence:
 *		its pid and latch, so that sessions can wake it and can tell a
 *		missing worker from a slow one.
 *
 * Everything here is under the slot's spinlock (`request.mutex`), except
 * worker_failed_starts, which only the worker touches, and only one runs
 * at a time.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"

#include "request.h"

typedef struct RvdRequestShared
{
	RvdRequest	request;
	int			worker_pid;		/* 0 when not running; under request.mutex */
	struct Latch *worker_latch; /* under request.mutex */
	/*
	 * Consecutive starts of the worker that did not reach its database
	 * (worker.c, rvd_worker_backoff): counted before connecting, reset once
	 * connected.  Only the worker touches it, and only one runs at a time.
	 */
	int			worker_failed_starts;
} RvdRequestShared;

static RvdRequestShared *shared = NULL;

Size
rvd_request_shmem_size(void)
{
	return MAXALIGN(sizeof(RvdRequestShared));
}

/* Called by shmem.c's startup hook, under AddinShmemInitLock. */
void
rvd_request_shmem_init(void)
{
	bool		found;

	shared = ShmemInitStruct("ruvector_dag request", rvd_request_shmem_size(), &found);
	if (found)
		return;
	memset(shared, 0, rvd_request_shmem_size());
	SpinLockInit(&shared->request.mutex);
	ConditionVariableInit(&shared->request.cv);
	shared->request.state = RVD_REQ_FREE;
}

RvdRequest *
rvd_request_slot(void)
{
	return &shared->request;
}

/*
 * The worker announces itself so that sessions can wake it (requests) and
 * can tell a missing worker from a slow one.
 */
void
rvd_worker_set_running(bool running)
{
	SpinLockAcquire(&shared->request.mutex);
	shared->worker_pid = running ? MyProcPid : 0;
	shared->worker_latch = running ? &MyProc->procLatch : NULL;
	SpinLockRelease(&shared->request.mutex);
}

Latch *
rvd_worker_latch(void)
{
	Latch	   *latch;

	SpinLockAcquire(&shared->request.mutex);
	latch = shared->worker_latch;
	SpinLockRelease(&shared->request.mutex);
	return latch;
}

/* The worker's pid, or 0 (also before shared memory exists); read without the lock: a hint. */
int
rvd_worker_pid(void)
{
	return shared != NULL ? shared->worker_pid : 0;
}

int
rvd_worker_failed_starts(void)
{
	return shared->worker_failed_starts;
}

void
rvd_worker_set_failed_starts(int n)
{
	shared->worker_failed_starts = n;
}
