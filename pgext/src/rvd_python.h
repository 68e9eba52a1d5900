/*
 * rvd_python.h
 *		Include Python.h after PostgreSQL's headers.
 *
 * Python.h redefines a few macros that PostgreSQL's headers (or the C
 * library through them) already set; undefine them first, as PL/Python does.
 */
#ifndef RVD_PYTHON_H
#define RVD_PYTHON_H

#undef _POSIX_C_SOURCE
#undef _XOPEN_SOURCE
#undef snprintf
#undef vsnprintf
#define PY_SSIZE_T_CLEAN
#include <Python.h>
/* Restore PostgreSQL's portable printf family. */
#undef snprintf
#undef vsnprintf
#define snprintf pg_snprintf
#define vsnprintf pg_vsnprintf

#endif							/* RVD_PYTHON_H */
