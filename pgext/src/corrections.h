/*-------------------------------------------------------------------------
 *
 * corrections.h
 *		Row-count corrections in the planner: the set_rel_pathlist and
 *		set_join_pathlist hooks (corrections.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef RVD_CORRECTIONS_H
#define RVD_CORRECTIONS_H

#include "nodes/bitmapset.h"
#include "nodes/pg_list.h"

/* One relation set the hooks saw while collecting (ruvector_dag._relation_keys). */
typedef struct RvdSeenRelation
{
	int			query_level;	/* 1: the statement itself; more: a subquery */
	Bitmapset  *base_relids;	/* its base relations (range-table indexes of that level) */
	char	   *relations;		/* the members' aliases, in range-table order */
	uint64		key;			/* relkey.c; 0: none */
	double		rows;			/* the planner's estimate */
} RvdSeenRelation;

extern void rvd_install_correction_hooks(void);

/* Plan with these factors (by relation-set key) until rvd_corrections_end, which returns how many
 * base and join relations were corrected. */
extern void rvd_corrections_begin(const uint64 *keys, const double *factors, int n);
extern int	rvd_corrections_end(void);
extern int	rvd_corrections_count(void);	/* corrected so far in this set's plannings */

/* Collect every base and join relation planned until rvd_collect_end (which returns them, oldest first). */
extern void rvd_collect_begin(void);
extern List *rvd_collect_end(void);

#endif							/* RVD_CORRECTIONS_H */
