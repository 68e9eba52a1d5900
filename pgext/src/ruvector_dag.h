/*-------------------------------------------------------------------------
 *
 * ruvector_dag.h
 *		Declarations shared by the files of the ruvector_dag shim.
 *
 * The shim is split by concern, in the manner of contrib modules:
 *
 *	init.c			_PG_init: refuses to half-load, registers everything
 *	guc.c			the ruvector.* settings (table generated from Python)
 *	pybridge.c		the embedded CPython interpreter and error translation
 *	pyworker.c		the worker's engine calls and its _ruvector_pg module
 *	sql_engine.c	SQL entry points whose work is done by the Python engine
 *	vector_type.c	the ruvector data type ('[1,2,3]', pgvector's text form)
 *	shmem.c			shared memory: enrolled-table registry, trajectory ring
 *	capture.c		planner/executor hooks that capture trajectories
 *	enroll.c		enrollment SQL functions, applied at commit
 *	sql_state.c		SQL views of the shared state
 *	worker.c		the background worker
 *	sql_learn.c		SQL entry points served by the worker (requests, stats)
 *	sql_mincut.c	the read-only check of ruvector_dag_mincut_plan's query
 *	steer.c			the decision cache and planning under an arm (plan steering)
 *	statements.c	statement texts for the worker, and its trials of arms
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUVECTOR_DAG_H
#define RUVECTOR_DAG_H

#include "fmgr.h"

/* --- guc.c ------------------------------------------------------------- */

/* One C variable per setting, named rvd_<name>; see guc_defs.h. */
#define RVD_GUC_BOOL(id, def, ctx, shortd, longd) extern bool rvd_##id;
#define RVD_GUC_INT(id, def, lo, hi, ctx, unit, shortd, longd) extern int rvd_##id;
#define RVD_GUC_REAL(id, def, lo, hi, ctx, shortd, longd) extern double rvd_##id;
#define RVD_GUC_STRING(id, def, ctx, shortd, longd) extern char *rvd_##id;
#define RVD_GUC_ENUM(id, def, ctx, shortd, longd) extern int rvd_##id;
#include "guc_defs.h"
#undef RVD_GUC_BOOL
#undef RVD_GUC_INT
#undef RVD_GUC_REAL
#undef RVD_GUC_STRING
#undef RVD_GUC_ENUM

extern void rvd_define_gucs(void);

/* --- pybridge.c -------------------------------------------------------- */

/*
 * Call ruvector_dag.sqlapi.call(<SQL name of the function>, args) for the
 * SQL function being executed and convert its result to the function's
 * declared return type.  Python exceptions become ERRORs with the SQLSTATE
 * the exception carries; engine warnings become WARNINGs.
 */
extern Datum rvd_py_call_sql_function(FunctionCallInfo fcinfo);

/* --- pyworker.c: the engine inside the background worker --------------- */

extern char *rvd_py_worker_start(void);
extern bool rvd_py_worker_ready(void);
extern char *rvd_py_worker_call(const char *method, const char *arg);
extern char *rvd_py_worker_request(const char *kind, Oid relid, int int_arg, double real_arg);

#endif							/* RUVECTOR_DAG_H */

/* --- shmem.c: registry of enrolled tables and the trajectory ring ------- */

#include <signal.h>

#include "datatype/timestamp.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/lwlock.h"
#include "storage/spin.h"
#include "trajectory_defs.h"
#include "steering_defs.h"		/* RVD_MAX_CAPTURE_RULES */

/* Enrolled tables across the whole cluster (one database in practice). */
#define RVD_MAX_ENROLLED 256

/*
 * One enrolled table.  Padded to a cache line: the counters of different
 * tables are bumped by different backends.  seen = stored + dropped, so
 * only two counters are kept.
 */
typedef union RvdTableEntry
{
	struct
	{
		Oid			dbid;
		Oid			relid;		/* InvalidOid: free slot */
		pg_atomic_uint64 stored;	/* statements whose record reached the ring */
		pg_atomic_uint64 dropped;	/* ... that found the ring full */
	};
	char		pad[PG_CACHE_LINE_SIZE];
} RvdTableEntry;

/*
 * What the engine in the background worker has learned about one table,
 * published after every batch it processes so that any session can read
 * it (ruvector_dag_learning_stats).  Written by the worker only, under
 * stats_lock; the durable copy is ruvector_dag.engine_state.
 */
typedef struct RvdLearnStats
{
	Oid			dbid;
	Oid			relid;			/* InvalidOid: free */
	uint64		consumed;		/* records the worker took from the ring */
	uint64		queries_processed;
	uint64		learned;		/* ... at or above the quality threshold */
	uint64		pattern_hits;
	double		avg_latency_us;
	double		prediction_error;	/* running mean |log latency error| */
	int32		patterns_stored;
	int32		ewc_tasks;
	uint64		background_cycles;
	double		last_cycle_ms;
	TimestampTz last_cycle_at;
	char		attention_type[32];	/* the selector's current choice */
} RvdLearnStats;

/*
 * One request from a session to the worker (ruvector_dag_learn and
 * friends): the engine's state lives in the worker, so forced cycles run
 * there.  One request at a time; `state` moves FREE -> PENDING (session)
 * -> RUNNING -> DONE (worker) -> FREE (session), every change under
 * `mutex` and announced on `cv`.  A session that gives up (cancel,
 * timeout) sets `abandoned`, and the worker frees the slot when it is done.
 */
typedef enum RvdRequestState
{
	RVD_REQ_FREE, RVD_REQ_PENDING, RVD_REQ_RUNNING, RVD_REQ_DONE
} RvdRequestState;

#define RVD_REQUEST_KIND_LEN 32
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

/*
 * A steering decision: plan statements with this query id under this arm
 * (steering_defs.h).  `source`: RVD_DECISION_PINNED by an administrator
 * (the engine never replaces it), RVD_DECISION_LEARNED by the engine,
 * RVD_DECISION_TRIAL by an administrator for the engine to judge (the
 * engine replaces it like one of its own exploratory arms).  The array is kept compact (removal
 * moves the last entry into the hole), under decisions_lock.
 */
#define RVD_MAX_DECISIONS 1024
#define RVD_DECISION_PINNED 1
#define RVD_DECISION_LEARNED 2
#define RVD_DECISION_TRIAL 3

/*
 * A capture rule, published by the worker for one query: RVD_RULE_EVERY
 * captures every execution (a query being steered: exploration and the
 * guard need them all); otherwise an execution is kept when a uniform
 * uint32 draw is below both the global sample threshold and `threshold`
 * (lower for a settled, expensive query, see worker.py).
 * RVD_RULE_WANT_TEXT asks for the statement's text (RvdStatement).
 */

/* The uint32 keep threshold of a capture fraction in [0, 1] (1: every statement). */
static inline uint32
rvd_fraction_threshold(double f)
{
	return f >= 1.0 ? PG_UINT32_MAX : (uint32) (f * (double) PG_UINT32_MAX);
}

typedef struct RvdCaptureRule
{
	uint64		query_id;
	uint32		threshold;
	uint8		flags;			/* RVD_RULE_* */
} RvdCaptureRule;

#define RVD_RULE_EVERY 1
#define RVD_RULE_WANT_TEXT 2

/*
 * One execution of a statement, offered by a backend when the worker asked
 * for it (RVD_RULE_WANT_TEXT), so that the worker can try an exploratory
 * arm on the statement itself, under a time limit, before any user's
 * execution is planned with it (worker.py, pyworker.c trial()).  Only what
 * statements.c's rule allows is offered.  `data` holds the search_path and
 * the text (NUL-terminated), nsettings (name, value) pairs of settings
 * (NUL-terminated), then per parameter its type oid (uint32), the length
 * of its value (int32, -1: NULL) and the value in its type's binary send
 * form.  query_id 0: a free slot.  Under statements_lock; the worker takes
 * (and frees) them.  The worker passes a taken statement back whole (as
 * bytes) to trial(), which checks it (rvd_trial_run).
 */
#define RVD_MAX_STATEMENTS 16
#define RVD_STATEMENT_DATA_LEN 8192

typedef struct RvdStatement
{
	uint64		query_id;
	Oid			dbid;
	Oid			session_userid; /* session_user of the execution */
	Oid			userid;			/* current_user of the execution */
	int32		nsettings;
	int32		nparams;
	int32		len;			/* bytes of data used */
	char		data[RVD_STATEMENT_DATA_LEN];
} RvdStatement;

typedef struct RvdDecision
{
	Oid			dbid;
	int16		arm;
	uint8		source;
	Oid			relid;			/* the table it was learned on; InvalidOid: pinned or tried */
	uint64		query_id;
} RvdDecision;

/*
 * Shared state.
 *
 * The ring is a bounded multi-producer queue: a backend reserves a sequence
 * number with a compare-and-swap on `head` (refusing, and counting a drop,
 * when head - tail = capacity), copies its record into the slot, and then
 * publishes it by writing the slot's sequence number.  Producers take no
 * lock and never wait.  Readers check the slot's sequence number before and
 * after copying (a seqlock), so they never accept a half-written record.
 *
 * Locks (tranche "ruvector_dag"):
 *	registry_lock	shared to read the table registry, exclusive to change
 *					it; changes also bump `generation` so that backends
 *					refresh their private copy without taking the lock on
 *					every query.
 *	consumer_lock	exclusive to advance `tail` (consume, reset), shared to
 *					peek: while it is held, tail cannot move, so no producer
 *					can reuse a slot a peeker is reading.
 *	stats_lock		exclusive for the worker to publish learn[], shared to read.
 *	decisions_lock	exclusive to change decisions[] and capture_rules[] (and then
 *					bump `steer_generation`), shared to copy them: backends
 *					keep a private copy (steer.c), so the planner's lookup
 *					takes no lock.
 *	statements_lock	exclusive to fill or take statements[].
 */
typedef struct RvdShared
{
	LWLock	   *registry_lock;
	LWLock	   *consumer_lock;
	LWLock	   *stats_lock;
	LWLock	   *decisions_lock;
	LWLock	   *statements_lock;
	bool		registry_loaded;	/* the worker reloaded enrollments */
	int			capacity;		/* ring slots (ruvector.dag_max_trajectories) */
	/*
	 * Each counter alone on a cache line: every statement reads
	 * `generation`, every captured one writes `head`.
	 */
	union
	{
		pg_atomic_uint32 generation;
		char		pad_generation[PG_CACHE_LINE_SIZE];
	};
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
	/*
	 * Read by every captured statement, written rarely (by the worker): a
	 * cache line each, away from the counters above.
	 *
	 * steer_generation	bumped on every change of decisions[] or capture_rules[].
	 * sample_threshold	capture keeps a statement when a uniform uint32 draw
	 *					is below it (PG_UINT32_MAX: every statement); the
	 *					worker lowers it while statements arrive faster than
	 *					its CPU budget learns from them.
	 */
	union
	{
		pg_atomic_uint32 steer_generation;
		char		pad_steer_generation[PG_CACHE_LINE_SIZE];
	};
	union
	{
		pg_atomic_uint32 sample_threshold;
		char		pad_sample_threshold[PG_CACHE_LINE_SIZE];
	};
	RvdTableEntry tables[RVD_MAX_ENROLLED];
	RvdLearnStats learn[RVD_MAX_ENROLLED];	/* under stats_lock */
	RvdRequest	request;
	pg_atomic_uint32 n_decisions;	/* read without the lock: 0 skips the lookup */
	RvdDecision decisions[RVD_MAX_DECISIONS];	/* under decisions_lock */
	/* Per-query capture rules, sorted by query id. */
	int			n_capture_rules;	/* under decisions_lock */
	RvdCaptureRule capture_rules[RVD_MAX_CAPTURE_RULES];
	RvdStatement statements[RVD_MAX_STATEMENTS];	/* under statements_lock */
	int			worker_pid;		/* 0 when not running; under request.mutex */
	/*
	 * Consecutive starts of the worker that did not reach its database
	 * (worker.c, rvd_worker_backoff): counted before connecting, reset once
	 * connected.  Only the worker touches it, and only one runs at a time.
	 */
	int			worker_failed_starts;
	struct Latch *worker_latch;
	pg_atomic_uint64 *slot_seq; /* per slot: seq of the record it holds, 0 while written */
	RvdTrajectory *ring;
} RvdShared;

extern RvdShared *rvd_shared;

extern void rvd_shmem_init_hooks(void);
extern bool rvd_registry_lookup(Oid dbid, Oid relid, int *slot);
extern bool rvd_registry_add(Oid dbid, Oid relid);
extern void rvd_registry_remove(Oid dbid, Oid relid);
extern void rvd_ring_push(const RvdTrajectory *rec, int slot);
extern int	rvd_ring_read(RvdTrajectory *out, int max, bool consume, Oid dbid);
extern int	rvd_ring_skip(Oid *relids, int max, Oid dbid, const uint64 *keep, int n_keep);
extern void rvd_ring_reset(void);
extern int64 rvd_ring_count(Oid dbid, Oid relid);
extern uint64 rvd_ring_buffered(void);

/* The worker process's PGPROC number and latch, or -1/NULL when it is not running. */
extern void rvd_worker_set_running(bool running);
extern struct Latch *rvd_worker_latch(void);

/* --- steer.c: planning under a learned or pinned arm ------------------- */

struct Query;
extern int	rvd_steer_arm(struct Query *parse, uint8 *source);
extern int	rvd_steer_lookup(uint64 query_id, uint8 *source);
extern bool rvd_set_decision(uint64 query_id, int arm, uint8 source);
extern bool rvd_set_decision_for(Oid relid, uint64 query_id, int arm, uint8 source);
extern bool rvd_capture_rule(uint64 query_id, uint32 *threshold, uint8 *flags);
extern bool rvd_texts_wanted(void);
extern void rvd_set_capture_rules(const RvdCaptureRule *rules, int n);
extern int	rvd_steer_begin(int arm);
extern void rvd_steer_end(int nest_level);

/* --- capture.c: executor hooks ----------------------------------------- */

extern void rvd_install_capture_hooks(void);
extern void rvd_install_steer_hooks(void);
extern bool rvd_capture_active(void);
/* Set by the worker around its trials: its own statements are neither captured nor steered. */
extern bool rvd_capture_suspended;
struct List;
extern int	rvd_rtable_enrolled_slot(struct List *rtable);
extern const char *rvd_operator_name(int code);

/* --- statements.c: statement texts and the worker's trials ------------ */

struct QueryDesc;
extern void rvd_statement_offer(struct QueryDesc *qd, int nesting_level);
extern int	rvd_statements_take(RvdStatement *out, int max);
extern bool rvd_statements_offered(void);
extern double rvd_trial_run(const RvdStatement *stmt, int arm, int timeout_ms);
extern void rvd_trial_init_session(void);
extern void rvd_install_trial_guard(void);
extern void rvd_trial_executor_start(void);
extern bool rvd_in_worker_lock_group(void);
extern volatile sig_atomic_t rvd_trial_running;

/* --- enroll.c: enrollment SQL and transactional registry updates ------- */

extern void rvd_enroll_init(void);
extern Oid	rvd_resolve_table(FunctionCallInfo fcinfo, int argno, bool for_change);
extern bool rvd_owns_relation(Oid relid);
extern bool rvd_may_read_relation(Oid relid);
extern int	rvd_internal_search_path(void);
extern bool rvd_is_enrolled(Oid relid);

/* --- worker.c ------------------------------------------------------------ */

/* CPU priority of the background worker, and of the parallel workers of its trials. */
#define RVD_WORKER_NICE 19

extern void rvd_register_worker(void);
