/*-------------------------------------------------------------------------
 *
 * sql_engine.c
 *		SQL entry points whose work is done by the Python engine.
 *
 * Every such function is declared in the install script with this one C
 * symbol; the bridge finds the SQL name of the function being called and
 * ruvector_dag.sqlapi dispatches on it.  Argument validation, with the
 * SQLSTATEs users see, lives in the engine next to the math it protects.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"

#include "ruvector_dag.h"

PG_FUNCTION_INFO_V1(rvd_engine_call);

Datum
rvd_engine_call(PG_FUNCTION_ARGS)
{
	return rvd_py_call_sql_function(fcinfo);
}
