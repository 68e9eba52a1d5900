/*-------------------------------------------------------------------------
 *
 * worker.h
 *		The ruvector_dag background worker.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RVD_WORKER_H
#define RVD_WORKER_H

extern void rvd_register_worker(void);

#endif							/* RVD_WORKER_H */
