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
 * at a time.  Sessions post and wait (rvd_request_post), the worker takes
 * and answers (rvd_request_begin, rvd_request_end); neither touches the
 * slot itself.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

#include "request.h"

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

/* How long a session waits for a missing worker to (re)appear. */
#define RVD_WORKER_ABSENT_MS 30000L
/* Longest a request may take before the session gives up. */
#define RVD_REQUEST_TIMEOUT_MS 600000L

/* Give up on our request: the worker frees the slot when it is done. */
static void
rvd_abandon_request(uint64 ticket)
{
	RvdRequest *r = &shared->request;

	SpinLockAcquire(&r->mutex);
	if (r->ticket == ticket)
	{
		if (r->state == RVD_REQ_DONE)
			r->state = RVD_REQ_FREE;
		else if (r->state == RVD_REQ_PENDING)
			r->state = RVD_REQ_FREE;	/* never started: withdraw it */
		else if (r->state == RVD_REQ_RUNNING)
			r->abandoned = true;
	}
	SpinLockRelease(&r->mutex);
	ConditionVariableBroadcast(&r->cv);
}

/*
 * Post a request to the worker and wait for its answer: the result text
 * (palloc'd), JSON, or the worker's error message when *failed, with its
 * SQLSTATE in sqlstate[6].  The caller checked the request.  Cancellation
 * (or a timeout) withdraws it.
 */
char *
rvd_request_post(const char *kind, Oid relid, int int_arg, double real_arg, bool *failed_out, char *sqlstate)
{
	RvdRequest *r = &shared->request;
	uint64		ticket = 0;
	TimestampTz started = GetCurrentTimestamp();
	TimestampTz absent_since = 0;
	bool		failed = false;
	char	   *result = palloc(RVD_REQUEST_RESULT_LEN);

	/* 1. Wait for the slot to be free, then post our request. */
	ConditionVariablePrepareToSleep(&r->cv);
	for (;;)
	{
		SpinLockAcquire(&r->mutex);
		if (r->state == RVD_REQ_FREE)
		{
			r->state = RVD_REQ_PENDING;
			r->abandoned = false;
			r->ticket++;
			ticket = r->ticket;
			strlcpy(r->kind, kind, RVD_REQUEST_KIND_LEN);
			r->dbid = MyDatabaseId;
			r->relid = relid;
			r->int_arg = int_arg;
			r->real_arg = real_arg;
			SpinLockRelease(&r->mutex);
			break;
		}
		SpinLockRelease(&r->mutex);
		ConditionVariableTimedSleep(&r->cv, 1000L, PG_WAIT_EXTENSION);
		if (TimestampDifferenceExceeds(started, GetCurrentTimestamp(), RVD_REQUEST_TIMEOUT_MS))
		{
			ConditionVariableCancelSleep();
			ereport(ERROR,
					(errcode(ERRCODE_QUERY_CANCELED),
					 errmsg("timed out waiting for the ruvector_dag background worker")));
		}
	}

	/* 2. Wake the worker and wait for the answer; cancellation withdraws it. */
	PG_TRY();
	{
		for (;;)
		{
			Latch	   *latch = rvd_worker_latch();
			bool		done;

			if (latch != NULL)
			{
				SetLatch(latch);
				absent_since = 0;
			}
			else if (absent_since == 0)
				absent_since = GetCurrentTimestamp();
			else if (TimestampDifferenceExceeds(absent_since, GetCurrentTimestamp(), RVD_WORKER_ABSENT_MS))
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("the ruvector_dag background worker is not running"),
						 errhint("Check that ruvector_dag is in shared_preload_libraries and the server log for worker errors.")));

			SpinLockAcquire(&r->mutex);
			done = (r->ticket == ticket && r->state == RVD_REQ_DONE);
			if (done)
			{
				failed = r->failed;
				memcpy(sqlstate, r->sqlstate, 6);
				strlcpy(result, r->result, RVD_REQUEST_RESULT_LEN);
				r->state = RVD_REQ_FREE;
			}
			SpinLockRelease(&r->mutex);
			if (done)
				break;
			if (TimestampDifferenceExceeds(started, GetCurrentTimestamp(), RVD_REQUEST_TIMEOUT_MS))
				ereport(ERROR,
						(errcode(ERRCODE_QUERY_CANCELED),
						 errmsg("timed out waiting for the ruvector_dag background worker")));
			ConditionVariableTimedSleep(&r->cv, 1000L, PG_WAIT_EXTENSION);
		}
	}
	PG_CATCH();
	{
		ConditionVariableCancelSleep();
		rvd_abandon_request(ticket);
		PG_RE_THROW();
	}
	PG_END_TRY();
	ConditionVariableCancelSleep();
	ConditionVariableBroadcast(&r->cv);	/* the slot is free for the next session */

	*failed_out = failed;
	return result;
}

/*
 * The worker: take the pending request, if any (PENDING -> RUNNING), copying
 * its arguments out so that the engine works on a private copy.
 */
bool
rvd_request_begin(RvdRequestArgs *args)
{
	RvdRequest *r = &shared->request;

	SpinLockAcquire(&r->mutex);
	if (r->state != RVD_REQ_PENDING)
	{
		SpinLockRelease(&r->mutex);
		return false;
	}
	r->state = RVD_REQ_RUNNING;
	memcpy(args->kind, r->kind, sizeof(args->kind));
	args->relid = r->relid;
	args->int_arg = r->int_arg;
	args->real_arg = r->real_arg;
	SpinLockRelease(&r->mutex);
	return true;
}

/*
 * The worker: answer the request it took (text: the JSON result, or the
 * error message when !ok).  A session that gave up meanwhile left the slot
 * for the worker to free.
 */
void
rvd_request_end(bool ok, const char *sqlstate, const char *text)
{
	RvdRequest *r = &shared->request;

	SpinLockAcquire(&r->mutex);
	r->failed = !ok;
	memcpy(r->sqlstate, sqlstate, 6);
	strlcpy(r->result, text, RVD_REQUEST_RESULT_LEN);
	if (r->abandoned)
	{
		r->abandoned = false;
		r->state = RVD_REQ_FREE;
	}
	else
		r->state = RVD_REQ_DONE;
	SpinLockRelease(&r->mutex);
	ConditionVariableBroadcast(&r->cv);
}

/* A request a crashed predecessor was serving will never complete. */
void
rvd_request_fail_orphaned(void)
{
	RvdRequest *r = &shared->request;

	SpinLockAcquire(&r->mutex);
	if (r->state == RVD_REQ_RUNNING)
	{
		r->failed = true;
		memcpy(r->sqlstate, "57P01", 6);
		strlcpy(r->result, "the ruvector_dag background worker restarted while serving this request",
				RVD_REQUEST_RESULT_LEN);
		r->state = r->abandoned ? RVD_REQ_FREE : RVD_REQ_DONE;
		r->abandoned = false;
	}
	SpinLockRelease(&r->mutex);
	ConditionVariableBroadcast(&r->cv);
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
