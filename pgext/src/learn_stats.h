/*-------------------------------------------------------------------------
 *
 * learn_stats.h
 *		What the worker's engine has learned, per table, published for
 *		ruvector_dag_learning_stats.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RVD_LEARN_STATS_H
#define RVD_LEARN_STATS_H

#include "datatype/timestamp.h"

/*
 * What the engine in the background worker has learned about one table,
 * published after every batch it processes so that any session can read
 * it (ruvector_dag_learning_stats).  Written by the worker only, under
 * the learn stats lock; the durable copy is ruvector_dag.engine_state.
 */
typedef struct RvdLearnStats
{
	Oid			dbid;
	Oid			relid;			/* InvalidOid: free */
	uint64		consumed;		/* records the worker took from the ring */
	uint64		queries_processed;
	uint64		learned;		/* ... at or above the quality threshold */
	uint64		pattern_hits;
	double		avg_latency_us;
	double		prediction_error;	/* running mean |log latency error| */
	int32		patterns_stored;
	int32		ewc_tasks;
	uint64		background_cycles;
	double		last_cycle_ms;
	TimestampTz last_cycle_at;
	char		attention_type[32];	/* the selector's current choice */
} RvdLearnStats;

/* Shared memory (shmem.c sums and calls these). */
extern Size rvd_learn_stats_shmem_size(void);
extern void rvd_learn_stats_request_locks(void);
extern void rvd_learn_stats_shmem_init(void);

extern bool rvd_learn_stats_publish(const RvdLearnStats *stats);
extern void rvd_learn_stats_forget(Oid relid);
extern bool rvd_learn_stats_get(Oid relid, RvdLearnStats *out);

#endif							/* RVD_LEARN_STATS_H */
