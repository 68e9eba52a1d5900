/*-------------------------------------------------------------------------
 *
 * py_main.h
 *		The embedded CPython interpreter, started on demand.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RVD_PY_MAIN_H
#define RVD_PY_MAIN_H

#include "rvd_python.h"

extern void rvd_py_ensure(void);
extern PyObject *rvd_py_sql_dispatch(void);

#endif							/* RVD_PY_MAIN_H */
