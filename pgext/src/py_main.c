/*-------------------------------------------------------------------------
 *
 * py_main.c
 *		The embedded CPython interpreter (as PL/Python's plpy_main.c).
 *
 * Python is started lazily, in the process that first needs it (a backend
 * calling an engine function, or the background worker), never in the
 * postmaster: forking after numba or BLAS have started threads deadlocks.
 * If PL/Python already started an interpreter in this process we reuse it.
 * Starting it also imports the engine's SQL entry point
 * (RVD_PY_EMBEDDED_MODULE.RVD_PY_EMBEDDED_START(cache_dir), seam_defs.h),
 * which sql_engine.c calls.  Errors follow py_elog.c's two rules.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_language.h"
#include "commands/proclang.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "guc.h"
#include "py_elog.h"
#include "py_main.h"
#include "seam_defs.h"

#ifndef RVD_PYTHON_EXECUTABLE
#error "RVD_PYTHON_EXECUTABLE must be defined by the build (python build.py)"
#endif
#ifndef RVD_PYTHON_PATHS
#error "RVD_PYTHON_PATHS must be defined by the build (python build.py)"
#endif

/* The engine's SQL dispatcher, once the engine is imported in this process */
static PyObject *rvd_sql_dispatch = NULL;

/* Whether this process already put our paths on sys.path */
static bool rvd_paths_added = false;

/* Prepend the entries of a ':'-separated list to sys.path, in order. */
static bool
rvd_prepend_sys_path(const char *list)
{
	PyObject   *sys_path = PySys_GetObject("path");	/* borrowed */
	char	   *copy;
	char	   *tok;
	char	   *save = NULL;
	Py_ssize_t	pos = 0;

	if (sys_path == NULL || !PyList_Check(sys_path))
		return false;
	if (list == NULL || list[0] == '\0')
		return true;

	copy = pstrdup(list);
	for (tok = strtok_r(copy, ":", &save); tok != NULL; tok = strtok_r(NULL, ":", &save))
	{
		PyObject   *item = PyUnicode_DecodeFSDefault(tok);

		if (item == NULL || PyList_Insert(sys_path, pos++, item) < 0)
		{
			Py_XDECREF(item);
			pfree(copy);
			return false;
		}
		Py_DECREF(item);
	}
	pfree(copy);
	return true;
}

/*
 * If PL/Python is installed in this database, let it start the interpreter.
 *
 * PL/Python registers its "plpy" module with PyImport_AppendInittab before
 * Py_Initialize; once we had started Python, its functions could no longer
 * import plpy in this session.  Running an empty inline block through the
 * language's inline handler makes PL/Python initialise first; we then reuse
 * its interpreter.  The handler is called directly (not through DO), so this
 * works for users who may not run untrusted languages themselves.
 */
static void
rvd_let_plpython_start_first(void)
{
	Oid			langoid = get_language_oid("plpython3u", true);
	HeapTuple	tup;
	Oid			inline_handler = InvalidOid;
	InlineCodeBlock *block;

	if (!OidIsValid(langoid))
		return;
	tup = SearchSysCache1(LANGOID, ObjectIdGetDatum(langoid));
	if (HeapTupleIsValid(tup))
	{
		inline_handler = ((Form_pg_language) GETSTRUCT(tup))->laninline;
		ReleaseSysCache(tup);
	}
	if (!OidIsValid(inline_handler))
		return;
	block = makeNode(InlineCodeBlock);
	block->source_text = pstrdup("pass");
	block->langOid = langoid;
	block->langIsTrusted = false;
	block->atomic = true;
	OidFunctionCall1(inline_handler, PointerGetDatum(block));
}

/*
 * Start the interpreter if needed and import the engine's SQL entry point.
 * On failure raises an ERROR and leaves the process able to try again.
 */
void
rvd_py_ensure(void)
{
	PyObject   *embedded;
	PyObject   *dispatch;
	const char *cache_dir;

	if (rvd_sql_dispatch != NULL)
		return;

	if (!Py_IsInitialized() && IsTransactionState())
		rvd_let_plpython_start_first();

	if (!Py_IsInitialized())
	{
		PyConfig	config;
		PyStatus	status;

		/*
		 * Isolated: ignore PYTHON* variables of the server's environment.
		 * No signal handlers: the server owns SIGINT and friends.  The
		 * executable recorded at build time makes Python find the same
		 * prefix (and virtualenv) as the interpreter that built us.
		 */
		PyConfig_InitIsolatedConfig(&config);
		config.install_signal_handlers = 0;
		config.parse_argv = 0;
		config.buffered_stdio = 0;
		status = PyConfig_SetBytesString(&config, &config.program_name, RVD_PYTHON_EXECUTABLE);
		if (!PyStatus_Exception(status))
			status = PyConfig_SetBytesString(&config, &config.executable, RVD_PYTHON_EXECUTABLE);
		if (!PyStatus_Exception(status))
			status = Py_InitializeFromConfig(&config);
		PyConfig_Clear(&config);
		if (PyStatus_Exception(status))
			ereport(ERROR,
					(errcode(ERRCODE_EXTERNAL_ROUTINE_INVOCATION_EXCEPTION),
					 errmsg("could not start the embedded Python interpreter: %s",
							status.err_msg ? status.err_msg : "unknown error"),
					 errdetail("Interpreter recorded at build time: %s", RVD_PYTHON_EXECUTABLE)));
	}

	if (!rvd_paths_added)
	{
		/* GUC entries first, so an administrator can override our paths. */
		if (!rvd_prepend_sys_path(RVD_PYTHON_PATHS) ||
			!rvd_prepend_sys_path(rvd_python_path))
			rvd_py_report(ERROR, "could not set the embedded interpreter's sys.path");
		rvd_paths_added = true;
	}

	/* Empty: the engine's default, outside the data directory (runtime/kernel_cache.py). */
	cache_dir = rvd_numba_cache_dir != NULL ? rvd_numba_cache_dir : "";

	embedded = PyImport_ImportModule(RVD_PY_EMBEDDED_MODULE);
	if (embedded == NULL)
		rvd_py_report(ERROR, "could not import the ruvector_dag engine");
	dispatch = PyObject_CallMethod(embedded, RVD_PY_EMBEDDED_START, "s", cache_dir);
	Py_DECREF(embedded);
	if (dispatch == NULL)
		rvd_py_report(ERROR, "could not start the ruvector_dag engine");
	rvd_sql_dispatch = dispatch;
}


/* The SQL dispatcher (borrowed); rvd_py_ensure() first. */
PyObject *
rvd_py_sql_dispatch(void)
{
	return rvd_sql_dispatch;
}
