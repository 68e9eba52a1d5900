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

/* One enrolled table's capture counters, as rvd_registry_counters copies them. */
typedef struct RvdTableCounters
{
	Oid			relid;
	uint64		executions;		/* statements run that read it */
	uint64		captured;		/* ... whose record reached the ring */
	uint64		dropped;		/* ... chosen for capture, but the ring was full */
} RvdTableCounters;

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
extern int	rvd_registry_size(void);
extern uint32 rvd_registry_generation(void);
extern bool rvd_registry_loaded(void);
extern void rvd_registry_set_loaded(void);
extern Oid	rvd_registry_relid(int slot);

/* Per-table capture counters (bumped by capture.c and ring.c, shown by sql_state.c). */
extern void rvd_registry_note_execution(int slot);
extern void rvd_registry_note_captured(int slot);
extern void rvd_registry_note_dropped(int slot);
extern void rvd_registry_reset_counters(void);
extern int	rvd_registry_counters(RvdTableCounters *out);

/* This backend's copy of its database's enrollments. */
extern bool rvd_capture_active(void);
extern int	rvd_rtable_enrolled_slot(List *rtable);

/* Called by trials.c around the worker's trials: its own statements are neither captured nor steered. */
extern void rvd_suspend_capture(bool suspend);
extern bool rvd_capture_is_suspended(void);

#endif							/* RVD_REGISTRY_H */
