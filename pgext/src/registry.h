/*-------------------------------------------------------------------------
 *
 * registry.h
 *		The enrolled tables, in shared memory, and this backend's copy.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RVD_REGISTRY_H
#define RVD_REGISTRY_H

#include "nodes/pg_list.h"

/* Enrolled tables across the whole cluster (one database in practice). */
#define RVD_MAX_ENROLLED 256

/* Shared memory (shmem.c sums and calls these). */
extern Size rvd_registry_shmem_size(void);
extern void rvd_registry_request_locks(void);
extern void rvd_registry_shmem_init(void);

/* The shared registry. */
extern bool rvd_registry_lookup(Oid dbid, Oid relid, int *slot);
extern bool rvd_registry_add(Oid dbid, Oid relid);
extern void rvd_registry_remove(Oid dbid, Oid relid);
extern int	rvd_registry_keep_only(Oid dbid, const Oid *relids, int n);
extern int	rvd_registry_count(void);
extern uint32 rvd_registry_generation(void);
extern bool rvd_registry_loaded(void);
extern void rvd_registry_set_loaded(void);
extern Oid	rvd_registry_relid(int slot);

/* Per-table capture counters (bumped by ring.c, shown by sql_state.c). */
extern void rvd_registry_note_stored(int slot);
extern void rvd_registry_note_dropped(int slot);
extern void rvd_registry_reset_counters(void);
extern int	rvd_registry_counters(Oid *relids, uint64 *stored, uint64 *dropped);

/* This backend's copy of its database's enrollments. */
extern bool rvd_capture_active(void);
extern int	rvd_rtable_enrolled_slot(List *rtable);

/* Called by trials.c around the worker's trials: its own statements are neither captured nor steered. */
extern void rvd_suspend_capture(bool suspend);
extern bool rvd_capture_is_suspended(void);

#endif							/* RVD_REGISTRY_H */
