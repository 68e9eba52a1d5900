/*-------------------------------------------------------------------------
 *
 * worker.c
 *		The ruvector_dag background worker.
 *
 * Registered at preload, started once recovery has finished, restarted
 * 10 s after a crash.  It connects to ruvector.dag_worker_database (as
 * pg_cron does with cron.database_name) and, on start, reloads the
 * enrollments committed in ruvector_dag.enrolled_tables into the shared
 * registry: shared memory is empty after a restart or a crash, the table is
 * not.  Until then capture is off for tables enrolled before the restart;
 * the reload takes milliseconds after the server accepts connections.
 *
 * Then it starts the Python engine (ruvector_dag/worker.py), which compiles
 * or loads every Numba kernel into the on-disk cache, so that sessions find
 * them compiled.  A failure there is logged as a WARNING and the worker goes
 * on with its C duties: the engine never takes capture down with it.
 *
 * SIGHUP reloads the configuration; SIGTERM ends the worker cleanly.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"

#include "ruvector_dag.h"

PGDLLEXPORT void rvd_worker_main(Datum main_arg);

void
rvd_register_worker(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 10;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "ruvector_dag");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "rvd_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "ruvector_dag worker");
	snprintf(worker.bgw_type, BGW_MAXLEN, "ruvector_dag worker");
	RegisterBackgroundWorker(&worker);
}

/* Load committed enrollments into the registry; returns how many. */
static int
rvd_reload_registry(void)
{
	int			loaded = 0;
	uint64		i;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "ruvector_dag: reloading enrollments");

	/* The extension may not be created yet: then there is nothing to load. */
	if (SPI_execute("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'ruvector_dag'", true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1 &&
		SPI_execute("SELECT relid FROM ruvector_dag.enrolled_tables e "
					"JOIN pg_catalog.pg_class c ON c.oid = e.relid", true, 0) == SPI_OK_SELECT)
	{
		for (i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);

			if (!isnull && rvd_registry_add(MyDatabaseId, DatumGetObjectId(d)))
				loaded++;
		}
	}

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	return loaded;
}

/* Start the engine; any ERROR on the way is logged and survived. */
static void
rvd_worker_start_engine(void)
{
	MemoryContext oldcontext = CurrentMemoryContext;

	PG_TRY();
	{
		char	   *line = rvd_py_worker_start();

		if (line != NULL)
			elog(LOG, "ruvector_dag worker: %s", line);
	}
	PG_CATCH();
	{
		/* Not in a transaction and holding nothing: reporting is enough. */
		MemoryContextSwitchTo(oldcontext);
		EmitErrorReport();
		FlushErrorState();
		elog(WARNING, "ruvector_dag worker continues without the Python engine");
	}
	PG_END_TRY();
}

void
rvd_worker_main(Datum main_arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(rvd_dag_worker_database, NULL, 0);

	if (!rvd_shared->registry_loaded)
	{
		int			n = rvd_reload_registry();

		rvd_shared->registry_loaded = true;
		elog(LOG, "ruvector_dag worker started in database \"%s\": %d enrolled table(s) reloaded",
			 rvd_dag_worker_database, n);
	}

	rvd_worker_start_engine();

	for (;;)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
	}
}
