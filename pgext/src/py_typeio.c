/*-------------------------------------------------------------------------
 *
 * py_typeio.c
 *		SQL arguments to Python objects and Python results to Datums, for
 *		the engine's SQL functions (as PL/Python's plpy_typeio.c).
 *
 * Wire format of SQL arguments handed to the engine's SQL dispatcher (the
 * Python side documents the same layout next to its dispatcher):
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

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "py_typeio.h"

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
PyObject *
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

/*
 * Copy a Python result into res.  Returns false with a Python error set if
 * the result does not fit the function's declared return type.
 */
bool
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

Datum
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

