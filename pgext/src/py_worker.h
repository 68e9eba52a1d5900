/*-------------------------------------------------------------------------
 *
 * py_worker.h
 *		The background worker's calls into the Python Worker.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RVD_PY_WORKER_H
#define RVD_PY_WORKER_H

extern char *rvd_py_worker_start(void);
extern bool rvd_py_worker_ready(void);
extern char *rvd_py_worker_call(const char *method);
extern char *rvd_py_worker_request(const char *kind, Oid relid, int int_arg, double real_arg);

#endif							/* RVD_PY_WORKER_H */
