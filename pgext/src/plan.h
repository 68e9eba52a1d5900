/*-------------------------------------------------------------------------
 *
 * plan.h
 *		Planning under an arm: the planner and EXPLAIN hooks.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RVD_PLAN_H
#define RVD_PLAN_H

#include "steering_defs.h"

extern void rvd_install_plan_hooks(void);

/* The arms (steering_defs.h), and applying one around planning. */
extern const RvdArm *rvd_arm(int arm);
extern int	rvd_arm_index(const char *name);
extern int	rvd_steer_begin(int arm);
extern void rvd_steer_end(int nest_level);

/* For capture.c: planner calls in progress, and what the last planning of a query took. */
extern int	rvd_plan_nesting_level(void);
extern bool rvd_plan_take_last(uint64 query_id, double *planning_us, int *arm, uint8 *source);

#endif							/* RVD_PLAN_H */
