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
 *	sql_engine.c	SQL entry points whose work is done by the Python engine
 *	vector_type.c	the ruvector data type ('[1,2,3]', pgvector's text form)
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

#endif							/* RUVECTOR_DAG_H */
