/*-------------------------------------------------------------------------
 *
 * ring.h
 *		The trajectory ring: captured records on their way to the worker.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RVD_RING_H
#define RVD_RING_H

#include "trajectory_defs.h"

/* Shared memory (shmem.c sums and calls these). */
extern Size rvd_ring_shmem_size(void);
extern void rvd_ring_request_locks(void);
extern void rvd_ring_shmem_init(void);

extern bool rvd_ring_ready(void);
extern int	rvd_ring_capacity(void);
extern void rvd_ring_push(const RvdTrajectory *rec, int slot);
extern int	rvd_ring_read(RvdTrajectory *out, int max, bool consume, Oid dbid);
extern int	rvd_ring_skip(Oid *relids, int max, Oid dbid, const uint64 *keep, int n_keep);
extern void rvd_ring_reset(void);
extern int64 rvd_ring_count(Oid dbid, Oid relid);
extern uint64 rvd_ring_buffered(void);
extern void rvd_ring_positions(uint64 *head, uint64 *tail);

#endif							/* RVD_RING_H */
