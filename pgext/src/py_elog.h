/*-------------------------------------------------------------------------
 *
 * py_elog.h
 *		Python exceptions and engine warnings as PostgreSQL reports.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RVD_PY_ELOG_H
#define RVD_PY_ELOG_H

#include "nodes/pg_list.h"

extern void rvd_py_report(int elevel, const char *context);
extern void rvd_py_report_warnings(const char *function, List *warnings);

#endif							/* RVD_PY_ELOG_H */
