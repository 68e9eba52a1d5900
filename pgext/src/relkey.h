/*-------------------------------------------------------------------------
 *
 * relkey.h
 *		The key under which a relation set's row-count correction is learned
 *		and applied (relkey.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef RVD_RELKEY_H
#define RVD_RELKEY_H

#include "nodes/pathnodes.h"

/* The key of a relation set, or 0 when it has none (it reads more than plain tables). */
extern uint64 rvd_relset_key(PlannerInfo *root, Relids relids);

/* The base relations of a relation set: its relids without outer-join relids (PostgreSQL 16). */
extern Relids rvd_base_relids(PlannerInfo *root, Relids relids);

#endif							/* RVD_RELKEY_H */
