/*-------------------------------------------------------------------------
 *
 * py_typeio.h
 *		SQL values to Python and back, for the engine's SQL functions.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RVD_PY_TYPEIO_H
#define RVD_PY_TYPEIO_H

#include "fmgr.h"
#include "nodes/pg_list.h"
#include "rvd_python.h"

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

extern PyObject *rvd_datum_to_py(Datum value, Oid type);
extern bool rvd_py_to_result(PyObject *obj, Oid rettype, RvdResult *res);
extern Datum rvd_result_to_datum(RvdResult *res, FunctionCallInfo fcinfo);

#endif							/* RVD_PY_TYPEIO_H */
