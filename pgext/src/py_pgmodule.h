/*-------------------------------------------------------------------------
 *
 * py_pgmodule.h
 *		The _ruvector_pg module given to the worker's Python.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RVD_PY_PGMODULE_H
#define RVD_PY_PGMODULE_H

extern void rvd_install_pg_module(void);

#endif							/* RVD_PY_PGMODULE_H */
