/*-------------------------------------------------------------------------
 *
 * pybridge.c
 *		The embedded CPython interpreter.
 *
 * Python is started lazily, in the process that first needs it (a backend
 * calling an engine function, or the background worker), never in the
 * postmaster: forking after numba or BLAS have started threads deadlocks.
 * If PL/Python already started an interpreter in this process we reuse it.
 *
 * Two rules keep PostgreSQL's error handling and Python's apart:
 *
 *	1. No ereport() is raised while a Python frame is on the stack.  Every C
 *	   function below finishes its Python work, releases its references, and
 *	   only then reports.  The one way Python calls back into PostgreSQL, the
 *	   worker's _ruvector_pg module (pyworker.c), catches every ERROR inside
 *	   the callback and turns it into a Python exception.  An ERROR's longjmp
 *	   therefore never crosses Python frames.
 *	2. No Python exception escapes into C: each one is fetched, cleared and
 *	   translated by rvd_py_report() into an ereport with the SQLSTATE the
 *	   exception carries (attribute "sqlstate", see ruvector_dag/errors.py).
 *
 * Wire format of SQL arguments handed to ruvector_dag.sqlapi.call (the
 * Python side documents the same layout in ruvector_dag/sqlapi.py):
 *	NULL				None
 *	bool, int4/8, float4/8	bool, int, float
 *	text, varchar		str
 *	jsonb				str (its text form)
 *	arrays of bool, int4, float4, float8
 *						tuple (typecode, shape, payload) with typecode one of
 *						"?", "i4", "f4", "f8"; shape a tuple of dimension
 *						lengths; payload the packed native-endian elements as
 *						bytes, or None when the array contains NULL elements
 *	text[]				tuple ("U", shape, list of str or None)
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_language.h"
#include "catalog/pg_type.h"
#include "commands/proclang.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "rvd_python.h"
#include "ruvector_dag.h"

#ifndef RVD_PYTHON_EXECUTABLE
#error "RVD_PYTHON_EXECUTABLE must be defined by the build (python build.py)"
#endif
#ifndef RVD_PYTHON_PATHS
#error "RVD_PYTHON_PATHS must be defined by the build (python build.py)"
#endif

/* ruvector_dag.sqlapi.call, once the engine is imported in this process */
static PyObject *rvd_sql_dispatch = NULL;

/* Whether this process already put our paths on sys.path */
static bool rvd_paths_added = false;

/* Per-call-site cache kept in flinfo->fn_extra */
typedef struct RvdFuncInfo
{
	char	   *name;			/* SQL name of the function */
	int			nargs;
	Oid		   *argtypes;		/* declared argument types */
	Oid			rettype;		/* declared return type */
} RvdFuncInfo;


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
		PyObject   *code = PyObject_GetAttrString(value, "sqlstate");

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

	if (rvd_numba_cache_dir != NULL && rvd_numba_cache_dir[0] != '\0')
		cache_dir = rvd_numba_cache_dir;
	else
		cache_dir = psprintf("%s/ruvector_dag_cache", DataDir);

	embedded = PyImport_ImportModule("ruvector_dag.embedded");
	if (embedded == NULL)
		rvd_py_report(ERROR, "could not import the ruvector_dag engine");
	dispatch = PyObject_CallMethod(embedded, "start", "s", cache_dir);
	Py_DECREF(embedded);
	if (dispatch == NULL)
		rvd_py_report(ERROR, "could not start the ruvector_dag engine");
	rvd_sql_dispatch = dispatch;
}

/* Packed element payload of an array, or Py_None when it has NULL elements. */
static PyObject *
rvd_array_to_py(ArrayType *arr)
{
	Oid			elemtype = ARR_ELEMTYPE(arr);
	int			ndim = ARR_NDIM(arr);
	int			nitems = ArrayGetNItems(ndim, ARR_DIMS(arr));
	const char *code;
	int			elemsize;
	PyObject   *shape;
	PyObject   *payload;
	PyObject   *result;
	int			i;

	shape = PyTuple_New(ndim);
	if (shape == NULL)
		return NULL;
	for (i = 0; i < ndim; i++)
		PyTuple_SET_ITEM(shape, i, PyLong_FromLong(ARR_DIMS(arr)[i]));

	switch (elemtype)
	{
		case BOOLOID:
			code = "?";
			elemsize = 1;
			break;
		case INT4OID:
			code = "i4";
			elemsize = 4;
			break;
		case FLOAT4OID:
			code = "f4";
			elemsize = 4;
			break;
		case FLOAT8OID:
			code = "f8";
			elemsize = 8;
			break;
		case TEXTOID:
			{
				Datum	   *elems;
				bool	   *nulls;
				int			n;

				deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
				payload = PyList_New(n);
				for (i = 0; payload != NULL && i < n; i++)
				{
					PyObject   *s;

					if (nulls[i])
					{
						Py_INCREF(Py_None);
						s = Py_None;
					}
					else
					{
						text	   *t = DatumGetTextPP(elems[i]);

						s = PyUnicode_FromStringAndSize(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
						if (s == NULL)
						{
							Py_CLEAR(payload);
							break;
						}
					}
					PyList_SET_ITEM(payload, i, s);
				}
				if (payload == NULL)
				{
					Py_DECREF(shape);
					return NULL;
				}
				result = Py_BuildValue("(sNN)", "U", shape, payload);
				return result;
			}
		default:
			Py_DECREF(shape);
			PyErr_Format(PyExc_TypeError, "unsupported array element type %u", elemtype);
			return NULL;
	}

	/*
	 * Fixed-width elements without a NULL bitmap are stored contiguously
	 * (all four types align to their own size), so copy them in one go.
	 */
	if (ARR_HASNULL(arr))
	{
		Py_INCREF(Py_None);
		payload = Py_None;
	}
	else
		payload = PyBytes_FromStringAndSize(ARR_DATA_PTR(arr), (Py_ssize_t) nitems * elemsize);
	if (payload == NULL)
	{
		Py_DECREF(shape);
		return NULL;
	}
	return Py_BuildValue("(sNN)", code, shape, payload);
}

/* One SQL argument in the wire format above; NULL with a Python error set on failure. */
static PyObject *
rvd_datum_to_py(Datum value, Oid type)
{
	switch (type)
	{
		case BOOLOID:
			return PyBool_FromLong(DatumGetBool(value));
		case INT4OID:
			return PyLong_FromLong(DatumGetInt32(value));
		case INT8OID:
			return PyLong_FromLongLong(DatumGetInt64(value));
		case FLOAT4OID:
			return PyFloat_FromDouble(DatumGetFloat4(value));
		case FLOAT8OID:
			return PyFloat_FromDouble(DatumGetFloat8(value));
		case TEXTOID:
		case VARCHAROID:
			{
				text	   *t = DatumGetTextPP(value);

				return PyUnicode_FromStringAndSize(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
			}
		case JSONBOID:
			{
				Jsonb	   *jb = DatumGetJsonbP(value);
				char	   *s = JsonbToCString(NULL, &jb->root, VARSIZE(jb));

				return PyUnicode_FromString(s);
			}
		case BOOLARRAYOID:
		case INT4ARRAYOID:
		case FLOAT4ARRAYOID:
		case FLOAT8ARRAYOID:
		case TEXTARRAYOID:
			return rvd_array_to_py(DatumGetArrayTypeP(value));
		default:
			PyErr_Format(PyExc_TypeError, "unsupported argument type %u", type);
			return NULL;
	}
}

/* Return value carried out of the Python section, built after it ends. */
typedef struct RvdResult
{
	bool		isnull;
	Oid			type;
	char	   *bytes;			/* float4[]: packed floats; text, jsonb: string */
	Py_ssize_t	len;
	double		real;
	long long	integer;
	List	   *warnings;		/* of char *: engine warnings to raise */
} RvdResult;

/*
 * Copy a Python result into res.  Returns false with a Python error set if
 * the result does not fit the function's declared return type.
 */
static bool
rvd_py_to_result(PyObject *obj, Oid rettype, RvdResult *res)
{
	res->type = rettype;
	res->isnull = (obj == Py_None);
	if (res->isnull)
		return true;

	switch (rettype)
	{
		case FLOAT4ARRAYOID:
			{
				Py_buffer	view;

				/* Anything exporting a buffer of packed float32 (numpy, bytes). */
				if (PyObject_GetBuffer(obj, &view, PyBUF_C_CONTIGUOUS) < 0)
					return false;
				if (view.len % sizeof(float4) != 0)
				{
					PyBuffer_Release(&view);
					PyErr_SetString(PyExc_TypeError, "engine returned a buffer that is not float32");
					return false;
				}
				res->bytes = palloc(view.len + 1);
				memcpy(res->bytes, view.buf, view.len);
				res->len = view.len;
				PyBuffer_Release(&view);
				return true;
			}
		case TEXTOID:
		case JSONBOID:
			{
				Py_ssize_t	len;
				const char *s = PyUnicode_AsUTF8AndSize(obj, &len);

				if (s == NULL)
					return false;
				res->bytes = pnstrdup(s, len);
				res->len = len;
				return true;
			}
		case FLOAT4OID:
		case FLOAT8OID:
			res->real = PyFloat_AsDouble(obj);
			return !(res->real == -1.0 && PyErr_Occurred());
		case BOOLOID:
			{
				int			truth = PyObject_IsTrue(obj);

				res->integer = truth;
				return truth >= 0;
			}
		case INT4OID:
		case INT8OID:
			res->integer = PyLong_AsLongLong(obj);
			return !(res->integer == -1 && PyErr_Occurred());
		default:
			PyErr_Format(PyExc_TypeError, "unsupported return type %u", rettype);
			return false;
	}
}

static Datum
rvd_result_to_datum(RvdResult *res, FunctionCallInfo fcinfo)
{
	if (res->isnull)
	{
		fcinfo->isnull = true;
		return (Datum) 0;
	}
	switch (res->type)
	{
		case FLOAT4ARRAYOID:
			{
				int			n = res->len / sizeof(float4);
				Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
				const float4 *f = (const float4 *) res->bytes;
				int			i;

				if (n == 0)
					return PointerGetDatum(construct_empty_array(FLOAT4OID));
				for (i = 0; i < n; i++)
					elems[i] = Float4GetDatum(f[i]);
				return PointerGetDatum(construct_array(elems, n, FLOAT4OID, sizeof(float4),
													   true, TYPALIGN_INT));
			}
		case TEXTOID:
			return PointerGetDatum(cstring_to_text_with_len(res->bytes, res->len));
		case JSONBOID:
			return DirectFunctionCall1(jsonb_in, CStringGetDatum(res->bytes));
		case FLOAT4OID:
			return Float4GetDatum((float4) res->real);
		case FLOAT8OID:
			return Float8GetDatum(res->real);
		case BOOLOID:
			return BoolGetDatum(res->integer != 0);
		case INT4OID:
			return Int32GetDatum((int32) res->integer);
		default:
			return Int64GetDatum((int64) res->integer);
	}
}

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
 * unmarshal its result.  See the header comment for the error discipline.
 */
Datum
rvd_py_call_sql_function(FunctionCallInfo fcinfo)
{
	RvdFuncInfo *info = rvd_func_info(fcinfo);
	PyObject   *args;
	PyObject   *out = NULL;
	RvdResult	res;
	ListCell   *lc;
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
		out = PyObject_CallFunction(rvd_sql_dispatch, "sO", info->name, args);
		Py_DECREF(args);
	}
	if (out != NULL)
	{
		/* sqlapi.call returns (result, [warning, ...]) */
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

	foreach(lc, res.warnings)
		ereport(WARNING,
				(errcode(ERRCODE_WARNING),
				 errmsg("%s: %s", info->name, (char *) lfirst(lc))));

	return rvd_result_to_datum(&res, fcinfo);
}
