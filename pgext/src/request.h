/*-------------------------------------------------------------------------
 *
 * request.h
 *		The request slot (sessions -> worker) and the worker's presence.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RVD_REQUEST_H
#define RVD_REQUEST_H

#include "seam_defs.h"			/* RVD_REQUEST_KIND_LEN, RVD_REQUEST_* kinds */
#include "storage/condition_variable.h"
#include "storage/spin.h"

/* CPU priority of the background worker, and of the parallel workers of its trials. */
#define RVD_WORKER_NICE 19

/*
 * One request from a session to the worker (ruvector_dag_learn and
 * friends): the engine's state lives in the worker, so forced cycles run
 * there.  One request at a time; `state` moves FREE -> PENDING (session,
 * sql_learn.c) -> RUNNING -> DONE (worker, worker.c) -> FREE (session),
 * every change under `mutex` and announced on `cv`.  A session that gives
 * up (cancel, timeout) sets `abandoned`, and the worker frees the slot
 * when it is done.
 */
typedef enum RvdRequestState
{
	RVD_REQ_FREE, RVD_REQ_PENDING, RVD_REQ_RUNNING, RVD_REQ_DONE
} RvdRequestState;

#define RVD_REQUEST_RESULT_LEN 16384

typedef struct RvdRequest
{
	slock_t		mutex;
	ConditionVariable cv;
	RvdRequestState state;
	bool		abandoned;
	uint64		ticket;			/* bumped per request */
	char		kind[RVD_REQUEST_KIND_LEN];
	Oid			dbid;
	Oid			relid;
	int32		int_arg;		/* -1: not given */
	double		real_arg;		/* NaN: not given */
	bool		failed;			/* result holds an error message */
	char		sqlstate[6];
	char		result[RVD_REQUEST_RESULT_LEN];	/* JSON text, or the error */
} RvdRequest;

/* Shared memory (shmem.c sums and calls these); a spinlock, no LWLock. */
extern Size rvd_request_shmem_size(void);
extern void rvd_request_shmem_init(void);

/* The one request slot (its protocol: RvdRequest above). */
extern RvdRequest *rvd_request_slot(void);

/* The worker process's pid and latch, or 0/NULL when it is not running. */
extern void rvd_worker_set_running(bool running);
extern struct Latch *rvd_worker_latch(void);
extern int	rvd_worker_pid(void);

/* Consecutive starts of the worker that did not reach its database (worker.c). */
extern int	rvd_worker_failed_starts(void);
extern void rvd_worker_set_failed_starts(int n);

#endif							/* RVD_REQUEST_H */
