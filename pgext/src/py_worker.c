/*-------------------------------------------------------------------------
 *
 * py_worker.c
 *		The background worker's calls into the engine: one instance of the
 *		Python Worker (RVD_PY_WORKER_MODULE.RVD_PY_WORKER_CLASS, seam_defs.h),
 *		constructed once per worker process and kept here, whose methods
 *		start, drain, background_cycle, request and stop are called by
 *		worker.c inside transactions it owns.
 *
 * Every call follows py_elog.c's rules: the Python work ends and its
 * references are released before any ereport, and a Python exception
 * becomes an ERROR carrying its SQLSTATE.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "py_elog.h"
#include "py_main.h"
#include "py_pgmodule.h"
#include "py_worker.h"
#include "seam_defs.h"

/* The Worker instance, once constructed */
static PyObject *rvd_worker = NULL;

/*
 * Start the engine in this (worker) process: interpreter, _ruvector_pg,
 * an instance of the Worker class, and its start() (kernel warm-up,
 * learned state reloaded).  Raises an ERROR on failure; the caller decides
 * to carry on without it.
 */
char *
rvd_py_worker_start(void)
{
	if (rvd_worker == NULL)
	{
		PyObject   *module;
		PyObject   *cls = NULL;

		rvd_py_ensure();
		rvd_install_pg_module();
		module = PyImport_ImportModule(RVD_PY_WORKER_MODULE);
		if (module == NULL)
			rvd_py_report(ERROR, "could not import " RVD_PY_WORKER_MODULE);
		cls = PyObject_GetAttrString(module, RVD_PY_WORKER_CLASS);
		Py_DECREF(module);
		if (cls != NULL)
		{
			rvd_worker = PyObject_CallNoArgs(cls);
			Py_DECREF(cls);
		}
		if (rvd_worker == NULL)
			rvd_py_report(ERROR, "could not create the " RVD_PY_WORKER_MODULE "." RVD_PY_WORKER_CLASS);
	}
	return rvd_py_worker_call(RVD_PY_WORKER_START);
}

bool
rvd_py_worker_ready(void)
{
	return rvd_worker != NULL;
}

/*
 * Call the Worker's method(*args), args a prebuilt tuple (or NULL for no
 * arguments; the reference is stolen).  Returns its str result palloc'd,
 * or NULL for None; a Python exception becomes an ERROR carrying its
 * SQLSTATE.
 */
static char *
rvd_py_worker_invoke(const char *method, PyObject *args)
{
	PyObject   *fn;
	PyObject   *out = NULL;
	char	   *result = NULL;
	bool		bad_type = false;

	if (rvd_worker == NULL)
	{
		Py_XDECREF(args);
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the ruvector_dag engine is not running in the background worker")));
	}
	fn = PyObject_GetAttrString(rvd_worker, method);
	if (fn != NULL && args != NULL)
		out = PyObject_CallObject(fn, args);
	else if (fn != NULL)
		out = PyObject_CallNoArgs(fn);
	Py_XDECREF(fn);
	Py_XDECREF(args);
	if (out != NULL && out != Py_None)
	{
		const char *s = PyUnicode_Check(out) ? PyUnicode_AsUTF8(out) : NULL;

		if (s != NULL)
			result = pstrdup(s);
		else
			bad_type = !PyErr_Occurred();
	}
	Py_XDECREF(out);
	if (PyErr_Occurred())
		rvd_py_report(ERROR, psprintf(RVD_PY_WORKER_MODULE "." RVD_PY_WORKER_CLASS ".%s failed", method));
	if (bad_type)
		elog(ERROR, RVD_PY_WORKER_MODULE "." RVD_PY_WORKER_CLASS ".%s returned something other than str or None",
			 method);
	return result;
}

/* A method without arguments: RVD_PY_WORKER_DRAIN, _BACKGROUND_CYCLE, _STOP. */
char *
rvd_py_worker_call(const char *method)
{
	return rvd_py_worker_invoke(method, NULL);
}

/* RVD_PY_WORKER_REQUEST(kind, relid, int_arg, real_arg), for a session's request. */
char *
rvd_py_worker_request(const char *kind, Oid relid, int int_arg, double real_arg)
{
	PyObject   *args = Py_BuildValue("(sIid)", kind, (unsigned int) relid, int_arg, real_arg);

	if (args == NULL)
		rvd_py_report(ERROR, "could not build arguments");
	return rvd_py_worker_invoke(RVD_PY_WORKER_REQUEST, args);
}
