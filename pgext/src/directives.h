/*-------------------------------------------------------------------------
 *
 * directives.h
 *		What the worker publishes for the backends: steering decisions,
 *		capture rules, the sampling threshold, the texts it wants.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RVD_DIRECTIVES_H
#define RVD_DIRECTIVES_H

#include "seam_defs.h"			/* RVD_RULE_*, RVD_DECISION_* */
#include "steering_defs.h"		/* RVD_MAX_CAPTURE_RULES, RVD_N_ARMS */

/*
 * A steering decision: plan statements with this query id under this arm
 * (steering_defs.h).  `source`: RVD_DECISION_PINNED by an administrator
 * (the engine never replaces it), RVD_DECISION_LEARNED by the engine,
 * RVD_DECISION_TRIAL by an administrator for the engine to judge (the
 * engine replaces it like one of its own exploratory arms).
 */
typedef struct RvdDecision
{
	Oid			dbid;
	int16		arm;
	uint8		source;
	Oid			relid;			/* the table it was learned on; InvalidOid: pinned or tried */
	uint64		query_id;
} RvdDecision;

/*
 * A capture rule, published by the worker for one query: RVD_RULE_EVERY
 * captures every execution (a query being steered: exploration and the
 * guard need them all); otherwise an execution is kept when a uniform
 * uint32 draw is below both the global sample threshold and `threshold`
 * (lower for a settled, expensive query, see the Python Worker).
 * RVD_RULE_WANT_TEXT asks for the statement's text (RvdStatement, trials.h).
 */
typedef struct RvdCaptureRule
{
	uint64		query_id;
	uint32		threshold;
	uint8		flags;			/* RVD_RULE_* */
} RvdCaptureRule;

/* The uint32 keep threshold of a capture fraction in [0, 1] (1: every statement). */
static inline uint32
rvd_fraction_threshold(double f)
{
	return f >= 1.0 ? PG_UINT32_MAX : (uint32) (f * (double) PG_UINT32_MAX);
}

/* Shared memory (shmem.c sums and calls these). */
extern Size rvd_directives_shmem_size(void);
extern void rvd_directives_request_locks(void);
extern void rvd_directives_shmem_init(void);

/* Read by backends, from their private copy. */
extern int	rvd_decisions_local_count(void);
extern int	rvd_steer_lookup(uint64 query_id, uint8 *source);
extern bool rvd_capture_rule(uint64 query_id, uint32 *threshold, uint8 *flags);
extern bool rvd_texts_wanted(void);
extern uint32 rvd_sample_threshold(void);

/* Written by the worker (and by administrators' SQL, sql_steer.c). */
extern bool rvd_set_decision(uint64 query_id, int arm, uint8 source);
extern bool rvd_set_decision_for(Oid relid, uint64 query_id, int arm, uint8 source);
extern void rvd_pins_sync(const uint64 *query_ids, const int *arms, int n);
extern bool rvd_apply_pin(uint64 query_id, int arm);
extern void rvd_set_capture_rules(const RvdCaptureRule *rules, int n);
extern void rvd_set_sample_threshold(uint32 threshold);

/* A copy of every decision (out: rvd_decisions_capacity() entries); returns how many. */
extern int	rvd_decisions_capacity(void);
extern int	rvd_decisions_copy(RvdDecision *out);

#endif							/* RVD_DIRECTIVES_H */
