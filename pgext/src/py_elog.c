/*-------------------------------------------------------------------------
 *
 * py_elog.c
 *		Python exceptions as ereport()s, with the SQLSTATE they carry, and
 *		the engine's warnings as WARNINGs (as PL/Python's plpy_elog.c).
 *
 * Two rules keep PostgreSQL's error handling and Python's apart (the
 * interpreter is started by py_main.c):
 *
 *	1. No ereport() is raised while a Python frame is on the stack.  Every C
 *	   function of the bridge finishes its Python work, releases its
 *	   references, and only then reports.  The one way Python calls back
 *	   into PostgreSQL, the worker's _ruvector_pg module (py_pgmodule.c),
 *	   catches every ERROR inside the callback and turns it into a Python
 *	   exception.  An ERROR's longjmp therefore never crosses Python frames.
 *	2. No Python exception escapes into C: each one is fetched, cleared and
 *	   translated by rvd_py_report() into an ereport with the SQLSTATE the
 *	   exception carries (attribute RVD_PY_SQLSTATE_ATTRIBUTE, see
 *	   ruvector_dag/definitions/errors.py).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "rvd_python.h"
#include "py_elog.h"
#include "seam_defs.h"

/*
 * Translate the pending Python exception into an ereport at elevel.
 *
 * Everything we need is copied into palloc'd memory and every Python
 * reference is released before ereport, which may longjmp.
 */
void
rvd_py_report(int elevel, const char *context)
{
	PyObject   *type = NULL,
			   *value = NULL,
			   *tb = NULL;
	char	   *message = NULL;
	char	   *detail = NULL;
	char		state[6] = "XX000";
	bool		engine_error = false;

	PyErr_Fetch(&type, &value, &tb);
	PyErr_NormalizeException(&type, &value, &tb);

	if (value != NULL)
	{
		PyObject   *str = PyObject_Str(value);
		PyObject   *code = PyObject_GetAttrString(value, RVD_PY_SQLSTATE_ATTRIBUTE);

		if (str != NULL && PyUnicode_Check(str))
		{
			const char *utf8 = PyUnicode_AsUTF8(str);

			if (utf8 != NULL)
				message = pstrdup(utf8);
		}
		if (code != NULL && PyUnicode_Check(code))
		{
			const char *s = PyUnicode_AsUTF8(code);

			if (s != NULL && strlen(s) == 5 &&
				strspn(s, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") == 5)
			{
				memcpy(state, s, 6);
				engine_error = true;
			}
		}
		Py_XDECREF(str);
		Py_XDECREF(code);
	}

	/* For anything the engine did not classify, say what Python raised. */
	if (!engine_error && type != NULL)
	{
		PyObject   *tbmod = PyImport_ImportModule("traceback");
		PyObject   *lines = NULL;
		PyObject   *joined = NULL;
		PyObject   *empty = NULL;

		if (tbmod != NULL)
			lines = PyObject_CallMethod(tbmod, "format_exception", "OOO",
										type, value ? value : Py_None,
										tb ? tb : Py_None);
		if (lines != NULL)
			empty = PyUnicode_FromString("");
		if (empty != NULL)
			joined = PyUnicode_Join(empty, lines);
		if (joined != NULL)
		{
			const char *s = PyUnicode_AsUTF8(joined);

			if (s != NULL)
				detail = pstrdup(s);
		}
		Py_XDECREF(joined);
		Py_XDECREF(empty);
		Py_XDECREF(lines);
		Py_XDECREF(tbmod);
	}

	Py_XDECREF(type);
	Py_XDECREF(value);
	Py_XDECREF(tb);
	PyErr_Clear();				/* whatever the formatting above raised */

	ereport(elevel,
			(errcode(MAKE_SQLSTATE(state[0], state[1], state[2], state[3], state[4])),
			 errmsg("%s%s%s", context ? context : "", context ? ": " : "",
					message ? message : "unknown error in the ruvector_dag engine"),
			 detail ? errdetail("%s", detail) : 0));
}

/* Raise the engine's warnings (strings) of a SQL function's call as WARNINGs. */
void
rvd_py_report_warnings(const char *function, List *warnings)
{
	ListCell   *lc;

	foreach(lc, warnings)
		ereport(WARNING,
				(errcode(ERRCODE_WARNING),
				 errmsg("%s: %s", function, (char *) lfirst(lc))));
}
