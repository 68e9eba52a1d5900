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

/* CPU priority of the background worker, and of the parallel workers of its trials. */
#define RVD_WORKER_NICE 19

/* The arguments of a request, as the worker takes them (rvd_request_begin). */
typedef struct RvdRequestArgs
{
	char		kind[RVD_REQUEST_KIND_LEN];
	Oid			relid;
	int32		int_arg;		/* -1: not given */
	double		real_arg;		/* NaN: not given */
} RvdRequestArgs;

/* Shared memory (shmem.c sums and calls these); a spinlock, no LWLock. */
extern Size rvd_request_shmem_size(void);
extern void rvd_request_shmem_init(void);

/* Sessions (sql_learn.c): post a request and wait for the answer. */
extern char *rvd_request_post(const char *kind, Oid relid, int int_arg, double real_arg,
							  bool *failed, char *sqlstate);

/* The worker (worker.c): take the pending request, answer it. */
extern bool rvd_request_begin(RvdRequestArgs *args);
extern void rvd_request_end(bool ok, const char *sqlstate, const char *text);
extern void rvd_request_fail_orphaned(void);

/* The worker process's pid and latch, or 0/NULL when it is not running. */
extern void rvd_worker_set_running(bool running);
extern struct Latch *rvd_worker_latch(void);
extern int	rvd_worker_pid(void);

/* Consecutive starts of the worker that did not reach its database (worker.c). */
extern int	rvd_worker_failed_starts(void);
extern void rvd_worker_set_failed_starts(int n);

#endif							/* RVD_REQUEST_H */
