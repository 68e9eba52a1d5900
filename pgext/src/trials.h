/*-------------------------------------------------------------------------
 *
 * trials.h
 *		Statements offered for trials, and the worker's trials of arms.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RVD_TRIALS_H
#define RVD_TRIALS_H

#include <signal.h>

/*
 * One execution of a statement, offered by a backend when the worker asked
 * for it (RVD_RULE_WANT_TEXT), so that the worker can try an exploratory
 * arm on the statement itself, under a time limit, before any user's
 * execution is planned with it (the Python Worker, py_pgmodule.c trial()).  Only
 * what trials.c's rule allows is offered.  `data` holds the search_path and
 * the text (NUL-terminated), nsettings (name, value) pairs of settings
 * (NUL-terminated), then per parameter its type oid (uint32), the length
 * of its value (int32, -1: NULL) and the value in its type's binary send
 * form.  query_id 0: a free slot.  Under the statements lock; the worker
 * takes (and frees) them.  The worker passes a taken statement back whole
 * (as bytes) to trial(), which checks it (rvd_trial_run).
 */
#define RVD_MAX_STATEMENTS 16
#define RVD_STATEMENT_DATA_LEN 8192

typedef struct RvdStatement
{
	uint64		query_id;
	Oid			dbid;
	Oid			session_userid; /* session_user of the execution */
	Oid			userid;			/* current_user of the execution */
	int32		nsettings;
	int32		nparams;
	int32		len;			/* bytes of data used */
	char		data[RVD_STATEMENT_DATA_LEN];
} RvdStatement;

/* Shared memory (shmem.c sums and calls these). */
extern Size rvd_statements_shmem_size(void);
extern void rvd_statements_request_locks(void);
extern void rvd_statements_shmem_init(void);

/* Backends: offering (called by capture.c's ExecutorEnd) and the guard in every ExecutorStart. */
struct QueryDesc;
extern bool rvd_statement_top_level_text(struct QueryDesc *qd);
extern void rvd_statement_offer(struct QueryDesc *qd, int nesting_level, bool top_level_text, bool asked);
extern void rvd_trial_executor_start(void);
extern void rvd_install_trial_guard(void);

/* The worker. */
extern int	rvd_statements_take(RvdStatement *out, int max);
extern bool rvd_statement_describe(const RvdStatement *stmt, Size size, Oid *userid, const char **text,
								   bool *standard_conforming_strings, int *backslash_quote);
extern bool rvd_statements_offered(void);
extern double rvd_trial_run(const RvdStatement *stmt, int arm, int timeout_ms);
extern void rvd_trial_init_session(void);
extern volatile sig_atomic_t rvd_trial_running;

#endif							/* RVD_TRIALS_H */
