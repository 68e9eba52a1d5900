/*-------------------------------------------------------------------------
 *
 * worker.c
 *		The ruvector_dag background worker.
 *
 * Registered at preload, started once the server is consistent (on a hot
 * standby too: there it is read-only, see rvd_sync_from_tables and the
 * engine's standby mode in ruvector_dag/runtime/worker.py), restarted
 * 10 s after a crash (later while its database cannot be reached: see
 * rvd_worker_backoff).  It connects to ruvector.dag_worker_database (as
 * pg_cron does with cron.database_name) and, on start, reloads the
 * enrollments committed in ruvector_dag.enrolled_tables into the shared
 * registry: shared memory is empty after a restart or a crash, the table is
 * not.  Until then capture is off for tables enrolled before the restart;
 * the reload takes milliseconds after the server accepts connections.
 *
 * Then it starts the Python engine (an instance of the Worker class named
 * in seam_defs.h, through py_worker.c), which compiles
 * or loads every Numba kernel into the on-disk cache, so that sessions find
 * them compiled, and reloads what was learned before.  A failure there is
 * logged as a WARNING and the worker goes on with its C duties: the engine
 * never takes capture down with it.
 *
 * The loop wakes every RVD_POLL_MS (RVD_BUSY_POLL_MS while the ring had
 * records at the last wake, so a busy server's ring does not overflow
 * between drains), or when a session posts a request:
 *	- serves the request (ruvector_dag_learn and friends, request.c);
 *	- in learning mode "learn", hands what the ring holds to the engine
 *	  (Worker.drain) and, every ruvector.dag_background_interval_ms, runs the
 *	  background cycle of every enrolled table (one log line per table).
 * Each engine call runs in its own transaction; an ERROR is logged and the
 * worker continues.  SIGHUP reloads the configuration; SIGTERM saves the
 * engine state and ends the worker.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/resource.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "directives.h"
#include "guc.h"
#include "plan.h"
#include "py_worker.h"
#include "registry.h"
#include "request.h"
#include "ring.h"
#include "seam_defs.h"
#include "trials.h"
#include "worker.h"

PGDLLEXPORT void rvd_worker_main(Datum main_arg);

/* Seconds the postmaster waits before it restarts an exited worker. */
#define RVD_RESTART_S 10

void
rvd_register_worker(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	/*
	 * From a consistent state: on a hot standby the worker loads the
	 * replicated enrollments, pins and learned state, and keeps running
	 * through promotion (a worker started at RecoveryFinished would not run
	 * on a standby at all).
	 */
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = RVD_RESTART_S;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "ruvector_dag");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "rvd_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "ruvector_dag worker");
	snprintf(worker.bgw_type, BGW_MAXLEN, "ruvector_dag worker");
	RegisterBackgroundWorker(&worker);
}

/* The name of ruvector.dag_learning_mode's value, as SHOW gives it. */
static const char *
rvd_learning_mode_name(void)
{
	static const struct config_enum_entry modes[] = RVD_ENUM_OPTIONS_dag_learning_mode;
	const struct config_enum_entry *e;

	for (e = modes; e->name != NULL; e++)
		if (e->val == rvd_dag_learning_mode)
			return e->name;
	return "?";
}

/*
 * Follow the tables: make the shared registry hold exactly the committed
 * enrollments of ruvector_dag.enrolled_tables, and the pinned decisions
 * exactly the rows of ruvector_dag.pinned_arms.  Shared memory is empty
 * after a restart or a crash, and rows can arrive without the functions
 * whose commit callbacks update it: replayed from the primary on a hot
 * standby, or restored by pg_restore.  So the worker runs this at start and
 * then every RVD_SYNC_MS (RVD_STANDBY_SYNC_MS in recovery).
 *
 * On a primary the tables are locked in SHARE mode first (conditionally:
 * if an enrollment or a pin is being committed, this round is skipped).
 * The lock waits out every writing transaction, whose commit callbacks run
 * before its locks are released, so the snapshot taken after it agrees with
 * shared memory: a change committed meanwhile is never undone.  In recovery
 * there are no local writers (and SHARE locks are not allowed).
 *
 * Returns the number of enrolled tables, or -1 when the extension is not
 * installed in this database.
 */
static Oid
rvd_extension_table(const char *name)
{
	return get_relname_relid(name, get_namespace_oid("ruvector_dag", true));
}

/* Pins from the rows (query_id bigint, arm text) of ruvector_dag.pinned_arms. */
static void
rvd_sync_pins(SPITupleTable *tuptable, uint64 nrows)
{
	uint64	   *query_ids = palloc(sizeof(uint64) * (nrows + 1));
	int		   *arms = palloc(sizeof(int) * (nrows + 1));
	int			n = 0;
	uint64		i;

	for (i = 0; i < nrows; i++)
	{
		bool		null_id;
		bool		null_arm;
		Datum		id = SPI_getbinval(tuptable->vals[i], tuptable->tupdesc, 1, &null_id);
		Datum		name = SPI_getbinval(tuptable->vals[i], tuptable->tupdesc, 2, &null_arm);
		int			arm;

		if (null_id || null_arm)
			continue;
		arm = rvd_arm_index(TextDatumGetCString(name));
		if (arm <= 0)
			continue;			/* an arm this version does not have: the query keeps its plan */
		query_ids[n] = (uint64) DatumGetInt64(id);
		arms[n++] = arm;
	}
	rvd_pins_sync(query_ids, arms, n);
}

static int
rvd_sync_from_tables(void)
{
	Oid			enrolled = rvd_extension_table("enrolled_tables");
	Oid			pinned = rvd_extension_table("pinned_arms");
	bool		primary = !RecoveryInProgress();
	int			n = 0;
	uint64		i;

	if (!OidIsValid(enrolled))
		return -1;
	if (primary && !(ConditionalLockRelationOid(enrolled, ShareLock) &&
					 (!OidIsValid(pinned) || ConditionalLockRelationOid(pinned, ShareLock))))
		return rvd_registry_count();	/* being written: next round */

	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_execute("SELECT e.relid FROM ruvector_dag.enrolled_tables e "
					"JOIN pg_catalog.pg_class c ON c.oid = e.relid", true, 0) == SPI_OK_SELECT)
	{
		Oid		   *relids = palloc(sizeof(Oid) * (SPI_processed + 1));

		for (i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);

			if (isnull)
				continue;
			relids[n] = DatumGetObjectId(d);
			if (!rvd_registry_add(MyDatabaseId, relids[n]))
				elog(WARNING, "ruvector_dag: enrollment registry is full; relation %u not captured",
					 relids[n]);
			n++;
		}
		(void) rvd_registry_keep_only(MyDatabaseId, relids, n);
	}
	if (OidIsValid(pinned) &&
		SPI_execute("SELECT query_id, arm FROM ruvector_dag.pinned_arms", true, 0) == SPI_OK_SELECT)
		rvd_sync_pins(SPI_tuptable, SPI_processed);
	SPI_finish();
	PopActiveSnapshot();
	return n;
}

/*
 * Run fn(arg) in a transaction of its own.  An ERROR is logged, the
 * transaction rolled back, and false returned: the worker survives any
 * failure of the engine.  *errmsg (if given) receives the message.
 */
typedef char *(*RvdEngineStep) (void *arg);

static bool
rvd_in_transaction(const char *what, RvdEngineStep fn, void *arg, char **result, char **errmsg,
				   char *sqlstate)
{
	MemoryContext oldcontext = CurrentMemoryContext;
	volatile bool ok = true;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();

	/*
	 * No snapshot for the whole transaction: the engine's SQL goes through
	 * _ruvector_pg.execute, which takes one per statement.  A snapshot
	 * held across a drain would hold back the xmin horizon nearly all the
	 * time on a busy server (the worker then drains every 50 ms), so HOT
	 * pruning of the user's updated tables would stop: pgbench TPC-B lost
	 * a quarter of its TPS to that.
	 */
	pgstat_report_activity(STATE_RUNNING, what);
	PG_TRY();
	{
		char	   *out = fn(arg);

		if (result != NULL)
			*result = out ? MemoryContextStrdup(TopMemoryContext, out) : NULL;
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcontext);
		edata = CopyErrorData();
		if (errmsg != NULL)
			*errmsg = MemoryContextStrdup(TopMemoryContext, edata->message ? edata->message : "error");
		if (sqlstate != NULL)
			memcpy(sqlstate, unpack_sql_state(edata->sqlerrcode), 6);
		/* Log it as a WARNING: the worker carries on. */
		edata->elevel = WARNING;
		FlushErrorState();
		ThrowErrorData(edata);
		AbortCurrentTransaction();
		ok = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(oldcontext);
	pgstat_report_activity(STATE_IDLE, NULL);
	return ok;
}

static char *
rvd_step_start(void *arg)
{
	return rvd_py_worker_start();
}

static char *
rvd_step_sync(void *arg)
{
	*(int *) arg = rvd_sync_from_tables();
	return NULL;
}

static char *
rvd_step_call(void *arg)
{
	return rvd_py_worker_call((const char *) arg);
}

static char *
rvd_step_request(void *arg)
{
	RvdRequestArgs *r = (RvdRequestArgs *) arg;

	return rvd_py_worker_request(r->kind, r->relid, r->int_arg, r->real_arg);
}

/* Log each line of a multi-line engine report. */
static void
rvd_log_lines(char *text)
{
	char	   *line;
	char	   *save = NULL;

	if (text == NULL)
		return;
	for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save))
		elog(LOG, "ruvector_dag worker: %s", line);
	pfree(text);
}

/*
 * Serve the pending session request, if any (see request.c).  The request
 * is copied out so that the engine works on a private copy.
 */
static void
rvd_serve_request(void)
{
	RvdRequestArgs local;
	char	   *result = NULL;
	char	   *errmsg = NULL;
	char		sqlstate[6] = "XX000";
	bool		ok;

	if (!rvd_request_begin(&local))
		return;

	if (!rvd_py_worker_ready())
	{
		ok = false;
		errmsg = pstrdup("the Python engine failed to start in the background worker (see the server log)");
		memcpy(sqlstate, "55000", 6);
	}
	else
		ok = rvd_in_transaction("ruvector_dag: serving a request", rvd_step_request, &local, &result,
								&errmsg, sqlstate);

	rvd_request_end(ok, sqlstate, ok ? (result ? result : "null") : errmsg);
	if (result)
		pfree(result);
	if (errmsg)
		pfree(errmsg);
}

static void
rvd_worker_exit(int code, Datum arg)
{
	rvd_worker_set_running(false);
}

/*
 * The worker runs at the lowest CPU priority.  Its CPU budget
 * (ruvector.dag_worker_cpu_percent) bounds what it takes from an idle-ish
 * machine; on a saturated one the budget alone still costs the users'
 * backends that share of a core, while at nice 19 the scheduler gives the
 * worker only what the backends leave (weight 15 against 1024).  Learning
 * then slows down, queries do not.  Lock waits cannot invert priorities for
 * long: a backend waiting on one of our LWLocks sleeps, freeing the CPU.
 * The parallel workers of its trials take the same priority (trials.c).
 * RVD_WORKER_NICE is in request.h.
 */

/* How often the ring is polled: a trajectory reaches the engine within this. */
#define RVD_POLL_MS 200L
/*
 * ... and while the ring fills faster than that (the default ring holds
 * 0.2 s of 50k statements/s; capture sampling normally keeps it far
 * emptier): busy when at least RVD_BUSY_SHARE of it was in use at the last
 * wake.  Every drain has a fixed cost (a transaction, a call into Python),
 * so polling fast only pays while there is a lot to drain.
 */
#define RVD_BUSY_POLL_MS 50L
#define RVD_BUSY_SHARE 8		/* one eighth */

/*
 * How often the worker follows ruvector_dag.enrolled_tables and
 * ruvector_dag.pinned_arms (rvd_sync_from_tables): on a primary the commit
 * callbacks do it at once, this only catches rows written otherwise (a
 * restore); on a standby it is how replayed changes arrive, and each round
 * also lets the engine look for state the primary saved.
 */
#define RVD_SYNC_MS 5000L
#define RVD_STANDBY_SYNC_MS 1000L

/* SIGTERM: shut down, and cancel a trial in progress rather than wait for it (trials.c). */
static void
rvd_worker_sigterm(SIGNAL_ARGS)
{
	if (rvd_trial_running)
	{
		QueryCancelPending = true;
		InterruptPending = true;
	}
	SignalHandlerForShutdownRequest(postgres_signal_arg);
}

/*
 * Back-off after starts that could not connect to the worker's database.
 * Each failed start costs a FATAL, and the postmaster restarts the worker
 * RVD_RESTART_S later: after n consecutive failures the worker waits
 * RVD_RESTART_S * 2^(n-1) more seconds, up to RVD_BACKOFF_MAX_S, before it
 * tries again.  One LOG line, with a hint, at the first failure and
 * whenever the wait grows; none once it is at its cap.  A configuration
 * reload (SELECT pg_reload_conf(), say after CREATE DATABASE) ends the wait
 * at once; SIGTERM ends the worker.  The wait is before the connection:
 * the worker holds no database, lock or snapshot while it waits.
 */
#define RVD_BACKOFF_MAX_S 600

static long
rvd_backoff_seconds(int failed_starts)
{
	long		s = RVD_RESTART_S;
	int			i;

	for (i = 1; i < failed_starts && s < RVD_BACKOFF_MAX_S; i++)
		s *= 2;
	return Min(s, RVD_BACKOFF_MAX_S);
}

static void
rvd_worker_backoff(void)
{
	int			failed = rvd_worker_failed_starts();
	long		delay_s;
	TimestampTz until;

	if (failed <= 0)
		return;
	delay_s = rvd_backoff_seconds(failed);
	if (failed == 1 || delay_s != rvd_backoff_seconds(failed - 1))
		ereport(LOG,
				(errmsg("ruvector_dag worker could not connect to database \"%s\" (%d failed start%s): next attempt in %ld s",
						rvd_dag_worker_database, failed, failed == 1 ? "" : "s", delay_s),
				 errhint("Create database \"%s\" (then CREATE EXTENSION ruvector_dag in it), or set ruvector.dag_worker_database "
						 "to an existing database and restart the server.  SELECT pg_reload_conf() makes the worker retry at once.",
						 rvd_dag_worker_database)));
	until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), delay_s * 1000L);
	for (;;)
	{
		long		ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), until);

		if (ShutdownRequestPending)
			proc_exit(0);
		/* A reload retries now; the main loop processes it once connected. */
		if (ConfigReloadPending || ms <= 0)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

void
rvd_worker_main(Datum main_arg)
{
	TimestampTz next_cycle;
	TimestampTz next_sync;
	bool		was_standby;
	bool		busy = false;	/* the ring had records at the last wake */
	bool		standby;		/* in recovery (a hot standby) at this wake */
	bool		promoted;		/* ... and no longer, since the last wake */
	bool		follow;			/* the tables were followed at this wake */
	bool		trials_waiting = false; /* the engine holds a statement to try (drain() said so) */
	char	   *line = NULL;

	/* Before the interpreter starts: threads it creates inherit the priority. */
	if (setpriority(PRIO_PROCESS, 0, RVD_WORKER_NICE) != 0)
		elog(LOG, "ruvector_dag worker: could not lower its CPU priority: %m");

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, rvd_worker_sigterm);
	BackgroundWorkerUnblockSignals();

	/*
	 * A start that cannot connect (the database is missing or refuses
	 * connections) ends in a FATAL, and the postmaster restarts the worker
	 * 10 s later: count such starts, and back off before trying again.
	 */
	rvd_worker_backoff();
	rvd_worker_set_failed_starts(rvd_worker_failed_starts() + 1);
	BackgroundWorkerInitializeConnection(rvd_dag_worker_database, NULL, 0);
	rvd_worker_set_failed_starts(0);

	/*
	 * The worker's own writes must never wait long behind a user's locks
	 * (a session holding a lock on our tables while it waits for us would
	 * otherwise deadlock undetected): give up after 5 s and retry later.
	 */
	SetConfigOption("lock_timeout", "5000", PGC_SUSET, PGC_S_OVERRIDE);

	/*
	 * Its commits do not wait for synchronous standbys.  What it writes is
	 * learned state, relearned if lost, and a wait for a standby's ack can
	 * last forever during a failover: a primary being demoted (fast shutdown
	 * while its standby is promoted) would wait for the worker's final save,
	 * the save for an ack the promoted standby no longer sends.  Standbys
	 * get the rows by streaming as usual.  Users' own commits (enrollments,
	 * pins) keep their synchronous_commit.
	 */
	SetConfigOption("synchronous_commit", "local", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("statement_timeout", "300000", PGC_SUSET, PGC_S_OVERRIDE);
	StartTransactionCommand();
	rvd_trial_init_session();
	CommitTransactionCommand();

	{
		int			n = -1;

		(void) rvd_in_transaction("ruvector_dag: loading enrollments and pins", rvd_step_sync, &n, NULL, NULL, NULL);
		rvd_registry_set_loaded();
		elog(LOG, "ruvector_dag worker started in database \"%s\"%s: %d enrolled table(s) loaded",
			 rvd_dag_worker_database, RecoveryInProgress() ? " on a hot standby (read-only: learns in memory)" : "",
			 Max(n, 0));
	}

	rvd_request_fail_orphaned();
	before_shmem_exit(rvd_worker_exit, (Datum) 0);
	rvd_worker_set_running(true);

	if (rvd_in_transaction("ruvector_dag: starting the engine", rvd_step_start, NULL, &line, NULL, NULL))
		rvd_log_lines(line);
	else
		elog(WARNING, "ruvector_dag worker continues without the Python engine");

	next_cycle = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), rvd_dag_background_interval_ms);
	next_sync = GetCurrentTimestamp();
	was_standby = RecoveryInProgress();
	for (;;)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 busy ? RVD_BUSY_POLL_MS : RVD_POLL_MS, PG_WAIT_EXTENSION);
		busy = false;
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();

		if (ConfigReloadPending)
		{
			int			interval_before = rvd_dag_background_interval_ms;

			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			elog(LOG, "ruvector_dag worker: configuration reloaded (learning mode %s)",
				 rvd_learning_mode_name());
			/* A new interval counts from the last cycle, not from the one scheduled under the old. */
			if (rvd_dag_background_interval_ms != interval_before)
				next_cycle = TimestampTzPlusMilliseconds(next_cycle,
														 (int64) rvd_dag_background_interval_ms - interval_before);
		}
		if (ShutdownRequestPending)
			break;

		/*
		 * Follow the tables (rows replayed on a standby, restored on a
		 * primary), and let the engine follow them too (a drain, records
		 * or not): on a standby it looks for what the primary saved since,
		 * so the primary's decisions apply before the first execution of
		 * their query; on a primary it re-keys enrollments restored from
		 * another cluster.  Promotion is noticed here too; the engine then
		 * writes what it learned as a standby to the tables.
		 */
		standby = RecoveryInProgress();
		promoted = was_standby && !standby;
		if (promoted)
			elog(LOG, "ruvector_dag worker: the server was promoted; the engine now writes its state to the tables");
		was_standby = standby;
		follow = promoted || GetCurrentTimestamp() >= next_sync;
		if (follow)
		{
			int			n;

			(void) rvd_in_transaction("ruvector_dag: following enrollments and pins", rvd_step_sync, &n,
									  NULL, NULL, NULL);
			next_sync = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													standby ? RVD_STANDBY_SYNC_MS : RVD_SYNC_MS);
		}

		if (!rvd_py_worker_ready())
		{
			rvd_serve_request();	/* answers with an error */
			continue;
		}

		rvd_serve_request();

		/* Learning: drain the ring, then the periodic cycle. */
		if (rvd_dag_learning_mode == RVD_DAG_LEARNING_MODE_LEARN)
		{
			uint64		buffered = rvd_ring_buffered();

			/*
			 * While capture samples, drain (or at least look) at every poll:
			 * the rate estimate behind the fraction must see the empty
			 * intervals too, or it could not climb back when the load goes.
			 */
			if (buffered > 0 || trials_waiting || rvd_statements_offered() || promoted || follow ||
				rvd_sample_threshold() != PG_UINT32_MAX)
			{
				busy = buffered >= (uint64) (rvd_ring_capacity() / RVD_BUSY_SHARE);
				line = NULL;
				trials_waiting = false;
				if (rvd_in_transaction("ruvector_dag: learning from captured queries", rvd_step_call,
									   RVD_PY_WORKER_DRAIN, &line, NULL, NULL) && line != NULL)
				{
					trials_waiting = strcmp(line, RVD_DRAIN_TRIALS_WAITING) == 0;
					pfree(line);
				}
			}
			if (GetCurrentTimestamp() >= next_cycle)
			{
				line = NULL;
				if (rvd_in_transaction("ruvector_dag: background cycle", rvd_step_call, RVD_PY_WORKER_BACKGROUND_CYCLE,
									   &line, NULL, NULL))
					rvd_log_lines(line);
				next_cycle = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														 rvd_dag_background_interval_ms);
			}
		}
	}

	/* SIGTERM: save what was learned, then leave. */
	if (rvd_py_worker_ready())
		(void) rvd_in_transaction("ruvector_dag: saving engine state", rvd_step_call, RVD_PY_WORKER_STOP, NULL, NULL,
								 NULL);
	elog(LOG, "ruvector_dag worker shutting down");
	proc_exit(0);
}
