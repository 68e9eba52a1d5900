/*-------------------------------------------------------------------------
 *
 * init.c
 *		Module entry point of ruvector_dag.
 *
 * The extension shares state between every backend and its background
 * worker, so it only works when loaded by shared_preload_libraries.  Loaded
 * any other way (CREATE EXTENSION or LOAD on a server that does not preload
 * it) it refuses with an ERROR that says how to fix it, instead of defining
 * half of itself.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#if PG_VERSION_NUM >= 160000
#include "nodes/queryjumble.h"
#else
#include "utils/queryjumble.h"
#endif

#include "capture.h"
#include "corrections.h"
#include "enroll.h"
#include "guc.h"
#include "plan.h"
#include "shmem.h"
#include "trials.h"
#include "worker.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("ruvector_dag must be loaded via shared_preload_libraries"),
				 errhint("Add ruvector_dag to shared_preload_libraries in postgresql.conf and restart the server.")));

	rvd_define_gucs();

	/*
	 * Query ids key trajectories, planning times and learned decisions, so
	 * have the core compute them (compute_query_id = auto), as
	 * pg_stat_statements does.
	 */
	EnableQueryId();
	rvd_shmem_init_hooks();
	rvd_install_correction_hooks();
	rvd_install_plan_hooks();
	rvd_install_capture_hooks();
	rvd_install_trial_guard();
	rvd_enroll_init();
	rvd_register_worker();
}
