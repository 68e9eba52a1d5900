/*-------------------------------------------------------------------------
 *
 * sql_engine.c
 *		SQL entry points whose work is done by the Python engine.
 *
 * Every such function is declared in the install script with this one C
 * symbol; the bridge finds the SQL name of the function being called and
 * the engine's SQL dispatcher (what RVD_PY_EMBEDDED_START returns, see
 * py_main.c) dispatches on it.  Argument validation, with the
 * SQLSTATEs users see, lives in the engine next to the math it protects.
 *
 * The call: arguments converted by py_typeio.c, the dispatcher started by
 * py_main.c, errors and warnings reported by py_elog.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "py_elog.h"
#include "py_main.h"
#include "py_typeio.h"

PG_FUNCTION_INFO_V1(rvd_engine_call);

/* Per-call-site cache kept in flinfo->fn_extra */
typedef struct RvdFuncInfo
{
	char	   *name;			/* SQL name of the function */
	int			nargs;
	Oid		   *argtypes;		/* declared argument types */
	Oid			rettype;		/* declared return type */
} RvdFuncInfo;

static RvdFuncInfo *
rvd_func_info(FunctionCallInfo fcinfo)
{
	RvdFuncInfo *info = (RvdFuncInfo *) fcinfo->flinfo->fn_extra;

	if (info == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
		Oid			fn = fcinfo->flinfo->fn_oid;

		info = palloc0(sizeof(RvdFuncInfo));
		info->name = get_func_name(fn);
		info->rettype = get_func_signature(fn, &info->argtypes, &info->nargs);
		MemoryContextSwitchTo(old);
		fcinfo->flinfo->fn_extra = info;
	}
	return info;
}

/*
 * Generic SQL entry point: marshal the arguments, call the engine, and
 * unmarshal its result.  See py_elog.c for the error discipline.
 */
static Datum
rvd_py_call_sql_function(FunctionCallInfo fcinfo)
{
	RvdFuncInfo *info = rvd_func_info(fcinfo);
	PyObject   *args;
	PyObject   *out = NULL;
	RvdResult	res;
	int			i;

	memset(&res, 0, sizeof(res));
	rvd_py_ensure();

	/* --- Python section: no ereport until it ends ----------------------- */
	args = PyTuple_New(info->nargs);
	for (i = 0; args != NULL && i < info->nargs; i++)
	{
		PyObject   *arg;

		if (PG_ARGISNULL(i))
		{
			Py_INCREF(Py_None);
			arg = Py_None;
		}
		else
			arg = rvd_datum_to_py(PG_GETARG_DATUM(i), info->argtypes[i]);
		if (arg == NULL)
			Py_CLEAR(args);
		else
			PyTuple_SET_ITEM(args, i, arg);
	}
	if (args != NULL)
	{
		out = PyObject_CallFunction(rvd_py_sql_dispatch(), "sO", info->name, args);
		Py_DECREF(args);
	}
	if (out != NULL)
	{
		/* the dispatcher returns (result, [warning, ...]) */
		PyObject   *value = NULL;
		PyObject   *warnings = NULL;

		if (!PyArg_ParseTuple(out, "OO!", &value, &PyList_Type, &warnings) ||
			!rvd_py_to_result(value, info->rettype, &res))
			Py_CLEAR(out);
		else
		{
			Py_ssize_t	k;

			for (k = 0; k < PyList_GET_SIZE(warnings); k++)
			{
				const char *w = PyUnicode_AsUTF8(PyList_GET_ITEM(warnings, k));

				if (w == NULL)
				{
					PyErr_Clear();
					w = "engine warning could not be decoded";
				}
				res.warnings = lappend(res.warnings, pstrdup(w));
			}
		}
	}
	Py_XDECREF(out);
	if (PyErr_Occurred())
		rvd_py_report(ERROR, NULL);
	/* --- end of Python section ------------------------------------------- */

	rvd_py_report_warnings(info->name, res.warnings);

	return rvd_result_to_datum(&res, fcinfo);
}


Datum
rvd_engine_call(PG_FUNCTION_ARGS)
{
	return rvd_py_call_sql_function(fcinfo);
}
