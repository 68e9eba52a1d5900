/*-------------------------------------------------------------------------
 *
 * statements.c
 *		Statement texts for the worker's trials, and the trials themselves.
 *
 * Before an exploratory arm is planned for any user's execution, the
 * worker tries it on the statement itself (worker.py): it asks capture for
 * the text of the query (a capture rule with RVD_RULE_WANT_TEXT), a backend
 * executing that query copies the text of its execution, with the values
 * of its parameters, into shared memory (rvd_statement_offer), and the
 * worker runs it under the arm in a read-only subtransaction, as the role
 * that ran it, with the search_path it ran under, and under a statement
 * timeout of a small multiple of the default plan's mean latency
 * (rvd_trial_run).  An arm that does not finish in time is banned before
 * any user paid for it: that is the hard bound on exploration.
 *
 * Only what can be replayed safely is offered: a plain SELECT (no data
 * modifying CTE, no FOR UPDATE/SHARE), whose parameters, if any, are all
 * given values of built-in types (not PL/pgSQL variables fetched on
 * demand), and whose text with its parameters fits one slot.  The trial
 * is read-only whatever the statement calls (transaction_read_only, and a
 * security-restricted operation, as autovacuum runs index functions), so
 * a function with side effects fails the trial instead of writing twice.
 * The worker also checks that the text parses to the same query id.
 *
 * The offer runs in ExecutorEnd of a statement that has run, so it never
 * raises an error: built-in output functions do not fail on valid values,
 * and a statement that cannot be offered is simply not.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/params.h"
#include "portability/instr_time.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "tcop/dest.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"

#include "ruvector_dag.h"

bool		rvd_capture_suspended = false;

/* Whether the worker already holds (or a backend is offering) query_id's text. */
static bool
rvd_statement_held(uint64 query_id)
{
	int			i;

	for (i = 0; i < RVD_MAX_STATEMENTS; i++)
		if (rvd_shared->statements[i].query_id == query_id &&
			rvd_shared->statements[i].dbid == MyDatabaseId)
			return true;
	return false;
}

/* Append a NUL-terminated string to buf at *len; false when it does not fit. */
static bool
rvd_put(char *buf, int *len, const char *s)
{
	int			n = (int) strlen(s) + 1;

	if (*len + n > RVD_STATEMENT_DATA_LEN)
		return false;
	memcpy(buf + *len, s, n);
	*len += n;
	return true;
}

/*
 * Offer the text of an execution that has just run (capture asked: the
 * query's rule has RVD_RULE_WANT_TEXT).  Does nothing for statements that
 * cannot be replayed, when the worker holds the text already, or when
 * every slot is taken (the worker empties them at every drain).
 */
void
rvd_statement_offer(QueryDesc *qd)
{
	PlannedStmt *stmt = qd->plannedstmt;
	ParamListInfo params = qd->params;
	const char *text;
	int			location = stmt->stmt_location;
	int			length = stmt->stmt_len;
	int			nparams = params ? params->numParams : 0;
	char	   *buf;
	int			len = 0;
	char	   *path;
	int			i;
	bool		fits;

	if (qd->operation != CMD_SELECT || stmt->commandType != CMD_SELECT ||
		stmt->hasModifyingCTE || stmt->rowMarks != NIL || qd->sourceText == NULL ||
		stmt->queryId == 0 || (params != NULL && params->paramFetch != NULL))
		return;
	/* An unlocked look first: the usual answer is "held already". */
	if (rvd_statement_held(stmt->queryId))
		return;

	text = qd->sourceText;
	if (location > 0 && location < (int) strlen(text))
		text += location;
	else
		location = 0;
	if (length <= 0 || length > (int) strlen(text))
		length = (int) strlen(text);
	if (length + 64 > RVD_STATEMENT_DATA_LEN)
		return;

	buf = palloc(RVD_STATEMENT_DATA_LEN);
	path = namespace_search_path ? namespace_search_path : "";
	fits = rvd_put(buf, &len, path) && len + length + 1 <= RVD_STATEMENT_DATA_LEN;
	if (fits)
	{
		memcpy(buf + len, text, length);
		len += length;
		buf[len++] = '\0';
	}
	for (i = 0; fits && i < nparams; i++)
	{
		ParamExternData *p = &params->params[i];
		char		oid[16];

		if (!OidIsValid(p->ptype) || p->ptype >= FirstNormalObjectId)
		{
			fits = false;		/* a user-defined type: its output function might fail */
			break;
		}
		snprintf(oid, sizeof(oid), "%u", p->ptype);
		fits = rvd_put(buf, &len, oid);
		if (fits && p->isnull)
			fits = rvd_put(buf, &len, "N");
		else if (fits)
		{
			Oid			out;
			bool		varlena;
			char	   *value;

			getTypeOutputInfo(p->ptype, &out, &varlena);
			value = OidOutputFunctionCall(out, p->value);
			fits = len + 1 + (int) strlen(value) + 1 <= RVD_STATEMENT_DATA_LEN;
			if (fits)
			{
				buf[len++] = 'V';
				fits = rvd_put(buf, &len, value);
			}
			pfree(value);
		}
	}
	if (fits)
	{
		struct Latch *latch;

		LWLockAcquire(rvd_shared->statements_lock, LW_EXCLUSIVE);
		if (!rvd_statement_held(stmt->queryId))
		{
			for (i = 0; i < RVD_MAX_STATEMENTS; i++)
			{
				RvdStatement *s = &rvd_shared->statements[i];

				if (s->query_id != 0)
					continue;
				s->query_id = stmt->queryId;
				s->dbid = MyDatabaseId;
				s->userid = GetUserId();
				s->nparams = nparams;
				s->len = len;
				memcpy(s->data, buf, len);
				break;
			}
		}
		LWLockRelease(rvd_shared->statements_lock);
		/* Wake the worker: it tries the statement now, whether or not records arrive. */
		latch = rvd_worker_latch();
		if (latch != NULL)
			SetLatch(latch);
	}
	pfree(buf);
}

/* Whether a statement waits in a slot for the worker (read without the lock: a hint). */
bool
rvd_statements_offered(void)
{
	int			i;

	for (i = 0; i < RVD_MAX_STATEMENTS; i++)
		if (rvd_shared->statements[i].query_id != 0)
			return true;
	return false;
}

/*
 * Copy the offered statements of this database into out[] (at most max)
 * and free their slots; returns how many.  The worker's.
 */
int
rvd_statements_take(RvdStatement *out, int max)
{
	int			n = 0;
	int			i;

	LWLockAcquire(rvd_shared->statements_lock, LW_EXCLUSIVE);
	for (i = 0; i < RVD_MAX_STATEMENTS && n < max; i++)
	{
		RvdStatement *s = &rvd_shared->statements[i];

		if (s->query_id == 0 || s->dbid != MyDatabaseId)
			continue;
		memcpy(&out[n++], s, offsetof(RvdStatement, data) + s->len);
		s->query_id = 0;
	}
	/* Statements of other databases cannot be tried here: drop them. */
	for (i = 0; i < RVD_MAX_STATEMENTS; i++)
		if (rvd_shared->statements[i].dbid != MyDatabaseId)
			rvd_shared->statements[i].query_id = 0;
	LWLockRelease(rvd_shared->statements_lock);
	return n;
}

/* ------------------------------------------------------------------------
 * Trials (the worker)
 * ------------------------------------------------------------------------
 */

/* A trial is running: SIGTERM cancels it (worker.c). */
volatile sig_atomic_t rvd_trial_running = false;

/*
 * Check that a prepared trial statement is the query that was captured:
 * one plain SELECT with the same query id.
 */
static void
rvd_trial_check(SPIPlanPtr plan, uint64 query_id)
{
	List	   *sources = SPI_plan_get_plan_sources(plan);
	CachedPlanSource *source;
	Query	   *query;

	if (list_length(sources) != 1)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("trial statement is not a single statement")));
	source = linitial(sources);
	if (list_length(source->query_list) != 1)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("trial statement is rewritten into several")));
	query = linitial_node(Query, source->query_list);
	if (query->commandType != CMD_SELECT || query->hasModifyingCTE || query->rowMarks != NIL ||
		query->utilityStmt != NULL)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("trial statement is not a plain SELECT")));
	if (query->queryId != query_id)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("trial statement parses to query id %lld, not %lld",
							   (long long) query->queryId, (long long) query_id)));
}

/*
 * Run a statement once under an arm, as a trial, in a read-only
 * subtransaction as `userid` with `search_path`, its output discarded.
 * Returns its elapsed time in microseconds (planning included: a trial
 * errs on the slow side), or -1 when it was cancelled at timeout_ms.  Any
 * other error is re-thrown, after the subtransaction is rolled back.  The
 * caller holds a transaction and no snapshot.
 */
double
rvd_trial_run(uint64 query_id, Oid userid, const char *search_path, const char *text,
			  int nparams, const Oid *types, const char *const *values, int arm, int timeout_ms)
{
	MemoryContext oldcontext = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	Oid			save_userid;
	int			save_sec;
	bool		save_read_only = XactReadOnly;
	instr_time	start;			/* set before PG_TRY: read in PG_CATCH */
	instr_time	elapsed;
	volatile double result = -1;
	ErrorData  *edata = NULL;

	GetUserIdAndSecContext(&save_userid, &save_sec);
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcontext);
	INSTR_TIME_SET_CURRENT(start);
	PG_TRY();
	{
		ParamListInfo params = makeParamList(nparams);
		SPIPlanPtr	plan;
		SPIExecuteOptions options;
		instr_time	run_start;
		instr_time	run_time;
		int			nest;
		int			i;

		/* As the user, read-only, restricted: restored on error by the subtransaction's abort too. */
		SetUserIdAndSecContext(userid, save_sec | SECURITY_LOCAL_USERID_CHANGE |
							   SECURITY_RESTRICTED_OPERATION);
		XactReadOnly = true;
		nest = NewGUCNestLevel();
		(void) set_config_option("search_path", search_path, PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
		(void) rvd_steer_begin(arm);
		rvd_capture_suspended = true;

		PushActiveSnapshot(GetTransactionSnapshot());
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		for (i = 0; i < nparams; i++)
		{
			ParamExternData *p = &params->params[i];
			Oid			in;
			Oid			ioparam;

			getTypeInputInfo(types[i], &in, &ioparam);
			p->ptype = types[i];
			p->pflags = PARAM_FLAG_CONST;
			p->isnull = values[i] == NULL;
			p->value = p->isnull ? (Datum) 0 : OidInputFunctionCall(in, (char *) values[i], ioparam, -1);
		}
		plan = SPI_prepare(text, nparams, (Oid *) types);
		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		rvd_trial_check(plan, query_id);

		memset(&options, 0, sizeof(options));
		options.params = params;
		options.read_only = true;
		options.dest = CreateDestReceiver(DestNone);
		INSTR_TIME_SET_CURRENT(run_start);
		rvd_trial_running = true;
		enable_timeout_after(STATEMENT_TIMEOUT, Max(timeout_ms, 1));
		(void) SPI_execute_plan_extended(plan, &options);
		disable_timeout(STATEMENT_TIMEOUT, false);
		rvd_trial_running = false;
		INSTR_TIME_SET_CURRENT(run_time);
		INSTR_TIME_SUBTRACT(run_time, run_start);
		result = INSTR_TIME_GET_MICROSEC(run_time);
		/* The timer fired after the statement finished: the cancel it sent is ours, drop it. */
		if (get_timeout_indicator(STATEMENT_TIMEOUT, true))
			QueryCancelPending = false;

		SPI_finish();
		PopActiveSnapshot();
		rvd_capture_suspended = false;
		AtEOXact_GUC(true, nest);
		XactReadOnly = save_read_only;
		SetUserIdAndSecContext(save_userid, save_sec);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		disable_timeout(STATEMENT_TIMEOUT, false);
		rvd_trial_running = false;
		rvd_capture_suspended = false;
		INSTR_TIME_SET_CURRENT(elapsed);
		INSTR_TIME_SUBTRACT(elapsed, start);
		MemoryContextSwitchTo(oldcontext);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		XactReadOnly = save_read_only;
		SetUserIdAndSecContext(save_userid, save_sec);
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED &&
			INSTR_TIME_GET_MILLISEC(elapsed) >= (double) timeout_ms)
			return -1;			/* did not finish in time */
		ReThrowError(edata);
	}
	PG_END_TRY();
	return result;
}
