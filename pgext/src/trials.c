/*-------------------------------------------------------------------------
 *
 * trials.c
 *		Statement texts for the worker's trials, and the trials themselves.
 *
 * Before an exploratory arm is planned for any user's execution, the
 * worker tries it on the statement itself (the Python Worker): it asks capture for
 * the text of the query (a capture rule with RVD_RULE_WANT_TEXT), a backend
 * executing that query copies its execution into shared memory
 * (rvd_statement_offer), and the worker runs it under the default plan and
 * under the arm, each under a time limit (rvd_trial_run).  An arm that
 * does not finish in time is banned before any user paid for it: that is
 * the hard bound on exploration.
 *
 * A trial runs a user's statement inside the worker's session, which is a
 * superuser's.  The rule that keeps this from giving the statement more
 * than its user had, or from leaving anything behind (docs/security.md,
 * "Trials"):
 *
 *	- What is offered: a top-level plain SELECT (no data-modifying CTE, no
 *	  FOR UPDATE/SHARE, no foreign table), not run inside a security
 *	  definer function or a security-restricted operation, whose parameters
 *	  are all given values of built-in base types.  The backend copies the
 *	  text, its session_user and current_user, its search_path, the
 *	  settings that change how the text parses or is planned, and its
 *	  parameters in binary form (independent of DateStyle and friends).
 *	- Who runs it: the statement's own session_user and current_user, set
 *	  through the GUC machinery (session_authorization, role) in the
 *	  trial's subtransaction, then a security-restricted operation, in a
 *	  read-only transaction.  Statements of superusers, replication roles
 *	  and members of pg_execute_server_program or pg_write_server_files
 *	  are not tried unless ruvector.dag_trial_privileged_statements is on.
 *	- What it may call: no volatile function (checked on the parsed and
 *	  rewritten query, aggregates' support functions and domains' CHECK
 *	  constraints included), and, while it is planned and runs, no function
 *	  that is not built in unless it is not volatile and its owner is a
 *	  superuser or a role of ruvector.dag_trial_trusted_roles (a
 *	  needs_fmgr_hook refuses it, as sepgsql guards calls), so a wrapper
 *	  mislabeled STABLE cannot smuggle a call in; and no statement but its
 *	  own (a function's statements and utility commands are refused by the
 *	  ExecutorStart and ProcessUtility hooks).
 *	- What is left: nothing.  The subtransaction is always rolled back
 *	  (settings, notifications, temporary objects, transaction locks), the
 *	  worker's session-level advisory locks are released after it, and
 *	  pg_stat_statements does not count it.
 *
 * The offer runs in ExecutorEnd of a statement that has run, so it never
 * raises an error: built-in send functions do not fail on valid values,
 * sizes are checked before they run, and a statement that cannot be
 * offered is simply not.
 *
 * Why the offer lives here and not in capture.c: the payload it writes is
 * read back by the trial (rvd_trial_read), and what it refuses to offer is
 * the first half of the rule above, the trial's checks the second; both
 * halves and the format stay in one file.  Calls go one way: capture.c's
 * executor hooks call rvd_statement_offer and rvd_trial_executor_start,
 * nothing here calls capture.c.
 *
 * Lock (tranche "ruvector_dag statements"): exclusive to fill or take
 * statements[].
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>
#include <sys/resource.h>

#include "access/detoast.h"
#include "access/parallel.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_aggregate.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "nodes/params.h"
#include "optimizer/optimizer.h"
#include "portability/instr_time.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/dest.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/regproc.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timeout.h"
#include "utils/typcache.h"
#include "utils/varlena.h"

#include "parser/parser.h"		/* BACKSLASH_QUOTE_*: how a statement's text is lexed */

#include "guc.h"
#include "plan.h"				/* rvd_steer_begin: a trial plans under the arm as the planner hook does */
#include "registry.h"			/* rvd_suspend_capture */
#include "request.h"			/* the worker's pid and latch, RVD_WORKER_NICE */
#include "trials.h"

#define RVD_STATEMENTS_TRANCHE "ruvector_dag statements"

typedef struct RvdStatementsShared
{
	LWLock	   *lock;
	RvdStatement statements[RVD_MAX_STATEMENTS];	/* under the lock */
} RvdStatementsShared;

static RvdStatementsShared *stmts = NULL;

Size
rvd_statements_shmem_size(void)
{
	return MAXALIGN(sizeof(RvdStatementsShared));
}

void
rvd_statements_request_locks(void)
{
	RequestNamedLWLockTranche(RVD_STATEMENTS_TRANCHE, 1);
}

/* Called by shmem.c's startup hook, under AddinShmemInitLock. */
void
rvd_statements_shmem_init(void)
{
	bool		found;

	stmts = ShmemInitStruct("ruvector_dag statements", rvd_statements_shmem_size(), &found);
	if (found)
		return;
	memset(stmts, 0, rvd_statements_shmem_size());
	stmts->lock = &GetNamedLWLockTranche(RVD_STATEMENTS_TRANCHE)[0].lock;
}

/*
 * Settings that change how a statement's text parses or what its
 * constants mean, reproduced in its trial with its search_path.  The
 * settings that change its plan are those PostgreSQL marks GUC_EXPLAIN
 * (EXPLAIN (SETTINGS) shows them): those are reproduced too.
 */
static const char *const rvd_parse_settings[] = {
	"DateStyle", "IntervalStyle", "TimeZone", "standard_conforming_strings", "backslash_quote",
	"transform_null_equals", "array_nulls", "default_text_search_config", "xmloption",
	"extra_float_digits", "lc_monetary", "lc_numeric", "lc_time",
};

/* Slots no statement holds (read without the lock: a hint, exact under it). */
static int
rvd_statement_free_slots(void)
{
	int			i;
	int			n = 0;

	for (i = 0; i < RVD_MAX_STATEMENTS; i++)
		n += stmts->statements[i].query_id == 0;
	return n;
}

/* Whether the worker already holds (or a backend is offering) query_id's text. */
static bool
rvd_statement_held(uint64 query_id)
{
	int			i;

	for (i = 0; i < RVD_MAX_STATEMENTS; i++)
		if (stmts->statements[i].query_id == query_id &&
			stmts->statements[i].dbid == MyDatabaseId)
			return true;
	return false;
}

/* ------------------------------------------------------------------------
 * The statement's payload: RvdStatement.data
 *
 *	search_path \0 text \0
 *	nsettings x (name \0 value \0)
 *	nparams x (type oid: uint32, length: int32 (-1: NULL), bytes of the
 *			   type's binary send form)
 * ------------------------------------------------------------------------
 */
typedef struct RvdPayload
{
	char	   *buf;
	int			len;
	bool		fits;
} RvdPayload;

static void
rvd_put_bytes(RvdPayload *p, const void *data, int n)
{
	if (!p->fits || n < 0 || p->len + n > RVD_STATEMENT_DATA_LEN)
	{
		p->fits = false;
		return;
	}
	memcpy(p->buf + p->len, data, n);
	p->len += n;
}

static void
rvd_put_string(RvdPayload *p, const char *s)
{
	rvd_put_bytes(p, s, (int) strlen(s) + 1);
}

static void
rvd_put_int32(RvdPayload *p, int32 v)
{
	rvd_put_bytes(p, &v, sizeof(v));
}

/* Reading it back, in the worker: any inconsistency is an error. */
typedef struct RvdReader
{
	const char *p;
	const char *end;
} RvdReader;

static const char *
rvd_get_string(RvdReader *r)
{
	const char *s = r->p;
	const char *nul = memchr(r->p, '\0', r->end - r->p);

	if (nul == NULL)
		elog(ERROR, "ruvector_dag: malformed statement payload");
	r->p = nul + 1;
	return s;
}

static const char *
rvd_get_bytes(RvdReader *r, int n)
{
	const char *s = r->p;

	if (n < 0 || n > r->end - r->p)
		elog(ERROR, "ruvector_dag: malformed statement payload");
	r->p += n;
	return s;
}

static int32
rvd_get_int32(RvdReader *r)
{
	int32		v;

	memcpy(&v, rvd_get_bytes(r, sizeof(v)), sizeof(v));
	return v;
}

/*
 * A parameter type whose binary form the worker can read back without
 * calling anything but built-in code: a built-in base type (arrays of
 * built-in base types included), not a pseudo-type.
 */
static bool
rvd_param_type_ok(Oid type)
{
	HeapTuple	tup;
	Form_pg_type t;
	bool		ok;

	if (!OidIsValid(type) || type >= FirstNormalObjectId)
		return false;
	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(type));
	if (!HeapTupleIsValid(tup))
		return false;
	t = (Form_pg_type) GETSTRUCT(tup);
	ok = t->typtype == TYPTYPE_BASE && OidIsValid(t->typsend) && OidIsValid(t->typreceive) &&
		t->typlen != -2 &&
		(!OidIsValid(t->typelem) || get_typtype(t->typelem) == TYPTYPE_BASE);
	ReleaseSysCache(tup);
	return ok;
}

/* Append the settings of this session that change parsing or planning. */
static void
rvd_put_settings(RvdPayload *p, int32 *nsettings)
{
	struct config_generic **explain;
	int			n = 0;
	int			i;

	*nsettings = 0;
	for (i = 0; i < (int) lengthof(rvd_parse_settings); i++)
	{
		const char *value = GetConfigOption(rvd_parse_settings[i], true, false);

		if (value == NULL)
			continue;
		rvd_put_string(p, rvd_parse_settings[i]);
		rvd_put_string(p, value);
		(*nsettings)++;
	}
	/* The planner's settings that differ from their built-in defaults, as EXPLAIN (SETTINGS) lists them. */
	explain = get_explain_guc_options(&n);
	for (i = 0; i < n; i++)
	{
		const char *value = GetConfigOption(explain[i]->name, true, false);

		if (value == NULL || explain[i]->context > PGC_SUSET)
			continue;			/* (the worker has the server's value of the others) */
		rvd_put_string(p, explain[i]->name);
		rvd_put_string(p, value);
		(*nsettings)++;
	}
	pfree(explain);
}

/* Whether a plain SELECT's plan reads a foreign table. */
static bool
rvd_reads_foreign_table(PlannedStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->rtable)
	{
		RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);

		if (rte->rtekind == RTE_RELATION && rte->relkind == RELKIND_FOREIGN_TABLE)
			return true;
	}
	return false;
}

static bool rvd_roles_privileged(Oid session_userid, Oid userid);

/*
 * Whether a starting execution's text is the one the client sent (a
 * function's statements have their own: they run out of their context if
 * replayed).  The executor's nesting level alone does not tell: a DO
 * block's statements run at level 0.  Asked at ExecutorStart (capture.c
 * keeps the answer for ExecutorEnd): an extended-protocol portal may be
 * ended by the Sync message's commit, when debug_query_string is NULL
 * already (seen under load, where the coexistence test's trap was never
 * offered and so never explored).
 */
bool
rvd_statement_top_level_text(QueryDesc *qd)
{
	const char *text = qd->sourceText;

	return text != NULL && debug_query_string != NULL &&
		(text == debug_query_string || strcmp(text, debug_query_string) == 0);
}

/*
 * Offer the execution that has just run (capture asked: the query's rule
 * has RVD_RULE_WANT_TEXT).  Does nothing for statements that cannot be
 * tried (see the file's header), when the worker holds the text already,
 * or when every slot is taken (the worker empties them at every drain).
 */
void
rvd_statement_offer(QueryDesc *qd, int nesting_level, bool top_level_text, bool asked)
{
	PlannedStmt *stmt = qd->plannedstmt;
	ParamListInfo params = qd->params;
	const char *text;
	int			location = stmt->stmt_location;
	int			length = stmt->stmt_len;
	int			nparams = params ? params->numParams : 0;
	int32		nsettings = 0;
	RvdStatement *offer;
	RvdPayload	p;
	int			i;

	if (nesting_level != 0 || InSecurityRestrictedOperation() || InLocalUserIdChange() ||
		IsParallelWorker() || rvd_capture_is_suspended() || qd->sourceText == NULL || !top_level_text)
		return;
	if (qd->operation != CMD_SELECT || stmt->commandType != CMD_SELECT ||
		stmt->hasModifyingCTE || stmt->rowMarks != NIL ||
		stmt->queryId == 0 || (params != NULL && params->paramFetch != NULL) ||
		rvd_reads_foreign_table(stmt))
		return;
	/* An unlocked look first: the usual answer is "held already". */
	if (rvd_statement_held(stmt->queryId))
		return;
	/*
	 * An offer nobody asked for (a new query's first execution, for
	 * transfer) takes a slot only while half of them are free: the texts
	 * the worker asked for must always find one.
	 */
	if (!asked && rvd_statement_free_slots() < RVD_MAX_STATEMENTS / 2)
		return;
	/* (after the cheap checks: this one reads the role catalogs) */
	if (!rvd_dag_trial_privileged_statements && rvd_roles_privileged(GetSessionUserId(), GetUserId()))
		return;
	/* Text-like send functions convert to the client's encoding: the worker's is the database's. */
	if (nparams > 0 && pg_get_client_encoding() != GetDatabaseEncoding())
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

	offer = palloc(sizeof(RvdStatement));
	p.buf = offer->data;
	p.len = 0;
	p.fits = true;
	rvd_put_string(&p, namespace_search_path ? namespace_search_path : "");
	rvd_put_bytes(&p, text, length);
	rvd_put_bytes(&p, "", 1);
	if (p.fits)
		rvd_put_settings(&p, &nsettings);
	for (i = 0; p.fits && i < nparams; i++)
	{
		ParamExternData *prm = &params->params[i];

		if (!rvd_param_type_ok(prm->ptype))
			p.fits = false;		/* its send function might not be ours to trust */
		else if (prm->isnull)
		{
			rvd_put_int32(&p, (int32) prm->ptype);
			rvd_put_int32(&p, -1);
		}
		else
		{
			Oid			send;
			bool		varlena;
			int16		typlen = get_typlen(prm->ptype);
			bytea	   *bin;

			/* The size first: a large value is not worth converting to be refused. */
			if (typlen == -1 &&
				toast_raw_datum_size(prm->value) > (Size) (RVD_STATEMENT_DATA_LEN - p.len))
			{
				p.fits = false;
				break;
			}
			getTypeBinaryOutputInfo(prm->ptype, &send, &varlena);
			bin = OidSendFunctionCall(send, prm->value);
			rvd_put_int32(&p, (int32) prm->ptype);
			rvd_put_int32(&p, (int32) (VARSIZE(bin) - VARHDRSZ));
			rvd_put_bytes(&p, VARDATA(bin), VARSIZE(bin) - VARHDRSZ);
			pfree(bin);
		}
	}
	if (p.fits)
	{
		struct Latch *latch;

		LWLockAcquire(stmts->lock, LW_EXCLUSIVE);
		if (!rvd_statement_held(stmt->queryId) &&
			(asked || rvd_statement_free_slots() >= RVD_MAX_STATEMENTS / 2))
		{
			for (i = 0; i < RVD_MAX_STATEMENTS; i++)
			{
				RvdStatement *s = &stmts->statements[i];

				if (s->query_id != 0)
					continue;
				s->dbid = MyDatabaseId;
				s->session_userid = GetSessionUserId();
				s->userid = GetUserId();
				s->nsettings = nsettings;
				s->nparams = nparams;
				s->len = p.len;
				memcpy(s->data, offer->data, p.len);
				s->query_id = stmt->queryId;
				break;
			}
		}
		LWLockRelease(stmts->lock);
		/* Wake the worker: it tries the statement now, whether or not records arrive. */
		latch = asked ? rvd_worker_latch() : NULL;
		if (latch != NULL)
			SetLatch(latch);
	}
	pfree(offer);
}

/* Whether a statement waits in a slot for the worker (read without the lock: a hint). */
bool
rvd_statements_offered(void)
{
	int			i;

	for (i = 0; i < RVD_MAX_STATEMENTS; i++)
		if (stmts->statements[i].query_id != 0)
			return true;
	return false;
}

/*
 * Read an offered statement the worker holds as bytes (size of them): the
 * role it ran as (current_user, pg_stat_statements' userid), its text, and
 * the settings its text was lexed under (normalize.c lexes it the same
 * way).  False if the bytes are not a statement taken by
 * rvd_statements_take.
 */
bool
rvd_statement_describe(const RvdStatement *stmt, Size size, Oid *userid, const char **text,
					   bool *standard_conforming_strings, int *backslash_quote)
{
	const char *p;
	const char *end;
	int			i;

	if (size < offsetof(RvdStatement, data) || stmt->len < 0 || stmt->len > RVD_STATEMENT_DATA_LEN ||
		size < offsetof(RvdStatement, data) + (Size) stmt->len || stmt->nsettings < 0)
		return false;
	end = stmt->data + stmt->len;
	p = memchr(stmt->data, '\0', stmt->len);	/* the search_path first */
	if (p == NULL || (p = memchr(p + 1, '\0', end - (p + 1))) == NULL)
		return false;
	*userid = stmt->userid;
	*text = stmt->data + strlen(stmt->data) + 1;
	*standard_conforming_strings = true;
	*backslash_quote = BACKSLASH_QUOTE_SAFE_ENCODING;
	/* then the settings, name and value NUL-terminated each */
	for (i = 0, p = p + 1; i < stmt->nsettings; i++)
	{
		const char *name = p;
		const char *value;

		if (p >= end || (p = memchr(p, '\0', end - p)) == NULL)
			return false;
		value = ++p;
		if (p >= end || (p = memchr(p, '\0', end - p)) == NULL)
			return false;
		p++;
		if (strcmp(name, "standard_conforming_strings") == 0)
			*standard_conforming_strings = strcmp(value, "on") == 0;
		else if (strcmp(name, "backslash_quote") == 0)
			*backslash_quote = strcmp(value, "on") == 0 ? BACKSLASH_QUOTE_ON :
				strcmp(value, "off") == 0 ? BACKSLASH_QUOTE_OFF : BACKSLASH_QUOTE_SAFE_ENCODING;
	}
	return true;
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

	LWLockAcquire(stmts->lock, LW_EXCLUSIVE);
	for (i = 0; i < RVD_MAX_STATEMENTS && n < max; i++)
	{
		RvdStatement *s = &stmts->statements[i];

		if (s->query_id == 0 || s->dbid != MyDatabaseId)
			continue;
		memcpy(&out[n++], s, offsetof(RvdStatement, data) + s->len);
		s->query_id = 0;
	}
	/* Statements of other databases cannot be tried here: drop them. */
	for (i = 0; i < RVD_MAX_STATEMENTS; i++)
		if (stmts->statements[i].dbid != MyDatabaseId)
			stmts->statements[i].query_id = 0;
	LWLockRelease(stmts->lock);
	return n;
}

/* ------------------------------------------------------------------------
 * Trials (the worker)
 * ------------------------------------------------------------------------
 */

/* A trial is running: SIGTERM cancels it (worker.c). */
volatile sig_atomic_t rvd_trial_running = false;

/* A trial is being prepared or run in this process: the function guard is on. */
static bool rvd_trial_guarded = false;

static needs_fmgr_hook_type prev_needs_fmgr_hook = NULL;
static ProcessUtility_hook_type prev_ProcessUtility = NULL;
static fmgr_hook_type prev_fmgr_hook = NULL;

/* Whether this process is a parallel worker of the background worker (of its trials). */
static bool
rvd_in_worker_lock_group(void)
{
	int			worker_pid = rvd_worker_pid();

	/* A parallel worker is a member of its leader's lock group (the leader's PGPROC). */
	return IsParallelWorker() && worker_pid != 0 &&
		MyProc != NULL && MyProc->lockGroupLeader != NULL &&
		MyProc->lockGroupLeader->pid == worker_pid;
}

static bool
rvd_trial_guard_on(void)
{
	return rvd_trial_guarded || rvd_in_worker_lock_group();
}

/*
 * The roles of ruvector.dag_trial_trusted_roles, as oids: read once per
 * trial (rvd_trial_run clears them; a trial's parallel worker reads them
 * once, for the one query it serves), not at every call of a function,
 * which may be once per row.
 */
static List *rvd_trusted_owner_oids = NIL;
static bool rvd_trusted_owners_read = false;

static List *
rvd_trusted_owners(void)
{
	MemoryContext old;
	char	   *raw;
	List	   *names;
	ListCell   *lc;

	if (rvd_trusted_owners_read)
		return rvd_trusted_owner_oids;
	old = MemoryContextSwitchTo(TopMemoryContext);
	list_free(rvd_trusted_owner_oids);
	rvd_trusted_owner_oids = NIL;
	raw = pstrdup(rvd_dag_trial_trusted_roles != NULL ? rvd_dag_trial_trusted_roles : "");
	if (SplitIdentifierString(raw, ',', &names))
	{
		foreach(lc, names)
		{
			Oid			role = get_role_oid((const char *) lfirst(lc), true);

			if (OidIsValid(role))
				rvd_trusted_owner_oids = lappend_oid(rvd_trusted_owner_oids, role);
		}
	}
	list_free(names);
	pfree(raw);
	MemoryContextSwitchTo(old);
	rvd_trusted_owners_read = true;
	return rvd_trusted_owner_oids;
}

/*
 * Why a trial may not call a function that is not built in, or NULL: it
 * is volatile (whoever owns it: a domain's CHECK or a trusted function can
 * reach one the static check did not see), or its owner is neither a
 * superuser nor one of ruvector.dag_trial_trusted_roles (by name; the
 * owner itself, not its memberships).
 */
static const char *
rvd_function_refusal(Oid fn_oid)
{
	HeapTuple	tup;
	Oid			owner;
	char		volatility;

	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn_oid));
	if (!HeapTupleIsValid(tup))
		return "it does not exist";
	owner = ((Form_pg_proc) GETSTRUCT(tup))->proowner;
	volatility = ((Form_pg_proc) GETSTRUCT(tup))->provolatile;
	ReleaseSysCache(tup);
	if (volatility == PROVOLATILE_VOLATILE)
		return "it is volatile";
	if (superuser_arg(owner) || list_member_oid(rvd_trusted_owners(), owner))
		return NULL;
	return "its owner is neither a superuser nor one of ruvector.dag_trial_trusted_roles";
}

/*
 * needs_fmgr_hook: while a trial is guarded, every function that is not
 * built in is called through fmgr_security_definer, which calls
 * rvd_fmgr_hook first.  Built-in functions never reach this hook (fmgr
 * finds them without it): the static check refuses the volatile ones.
 */
static bool
rvd_needs_fmgr_hook(Oid fn_oid)
{
	if (prev_needs_fmgr_hook != NULL && prev_needs_fmgr_hook(fn_oid))
		return true;
	return fn_oid >= FirstNormalObjectId && rvd_trial_guard_on();
}

static void
rvd_fmgr_hook(FmgrHookEventType event, FmgrInfo *flinfo, Datum *private)
{
	const char *refusal;

	if (event == FHET_START && flinfo->fn_oid >= FirstNormalObjectId && rvd_trial_guard_on() &&
		(refusal = rvd_function_refusal(flinfo->fn_oid)) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("a trial does not call function %s: %s", format_procedure(flinfo->fn_oid), refusal)));
	if (prev_fmgr_hook != NULL)
		(*prev_fmgr_hook) (event, flinfo, private);
}

/* Executor starts in this trial so far (the statement's own is the first). */
static int	rvd_trial_executor_starts = 0;

/*
 * A parallel worker of the background worker's trial runs at the worker's
 * low priority too: postmaster starts it at the users' priority, and a
 * trial must not take CPU from them.
 */
static void
rvd_lower_trial_priority(void)
{
	static bool done = false;

	if (done || !IsParallelWorker())
		return;
	done = true;
	if (rvd_in_worker_lock_group() && setpriority(PRIO_PROCESS, 0, RVD_WORKER_NICE) != 0)
		elog(DEBUG1, "ruvector_dag: could not lower a trial's parallel worker's priority: %m");
}

/*
 * ExecutorStart (capture.c), in every backend, first thing: a trial's
 * parallel worker lowers its priority (above).  In a trial, the
 * statement's own execution is the only one.  A statement run by a
 * function (a trusted function's SPI, query_to_xml, ts_stat, a SQL
 * function not inlined) escaped the static check, and built-in functions
 * escape the function guard: the trial refuses it.
 */
void
rvd_trial_executor_start(void)
{
	rvd_lower_trial_priority();
	if (rvd_trial_guarded && rvd_trial_executor_starts++ > 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("a trial does not run statements nested in a function")));
}

/*
 * ProcessUtility_hook: a trial runs no utility statement either (a trusted
 * function's COPY, NOTIFY, LOCK, SET, PREPARE, DECLARE...).
 */
static void
rvd_trial_ProcessUtility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
						 ProcessUtilityContext context, ParamListInfo params,
						 QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	if (rvd_trial_guarded)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("a trial does not run utility statements")));
	if (prev_ProcessUtility != NULL)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
}

void
rvd_install_trial_guard(void)
{
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = rvd_trial_ProcessUtility;
	prev_needs_fmgr_hook = needs_fmgr_hook;
	needs_fmgr_hook = rvd_needs_fmgr_hook;
	prev_fmgr_hook = fmgr_hook;
	fmgr_hook = rvd_fmgr_hook;
}

/*
 * The worker's session, once at its start (in a transaction): its own SQL
 * resolves names in pg_catalog only (then pg_temp, where it creates
 * nothing), and its session_authorization setting names its role, so that
 * rolling back a trial's session_authorization restores the worker's role
 * (the setting's built-in default, NULL, would restore nothing: the
 * assign hook ignores it).
 */
void
rvd_trial_init_session(void)
{
	char	   *me = GetUserNameFromId(GetSessionUserId(), false);

	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("session_authorization", me, PGC_SUSET, PGC_S_OVERRIDE);
	pfree(me);
}

/* The statement's roles: refused when privileged (unless allowed) or gone. */
static bool
rvd_roles_privileged(Oid session_userid, Oid userid)
{
	return superuser_arg(session_userid) || superuser_arg(userid) ||
		has_rolreplication(session_userid) || has_rolreplication(userid) ||
		has_privs_of_role(session_userid, ROLE_PG_EXECUTE_SERVER_PROGRAM) ||
		has_privs_of_role(userid, ROLE_PG_EXECUTE_SERVER_PROGRAM) ||
		has_privs_of_role(session_userid, ROLE_PG_WRITE_SERVER_FILES) ||
		has_privs_of_role(userid, ROLE_PG_WRITE_SERVER_FILES);
}

/* Set one setting for the trial (saved, so the subtransaction's rollback restores it). */
static void
rvd_trial_set(const char *name, const char *value)
{
	(void) set_config_option(name, value, PGC_SUSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
}

/* A setting's built-in default in the form set_config_option reads, or NULL. */
static const char *
rvd_boot_value(struct config_generic *g)
{
	switch (g->vartype)
	{
		case PGC_BOOL:
			return ((struct config_bool *) g)->boot_val ? "on" : "off";
		case PGC_INT:
			return psprintf("%d", ((struct config_int *) g)->boot_val);
		case PGC_REAL:
			return psprintf("%.17g", ((struct config_real *) g)->boot_val);
		case PGC_STRING:
			return ((struct config_string *) g)->boot_val ? ((struct config_string *) g)->boot_val : "";
		case PGC_ENUM:
			return config_enum_lookup_by_value((struct config_enum *) g,
											   ((struct config_enum *) g)->boot_val);
	}
	return NULL;
}

/*
 * The worker's own planner settings that differ from their built-in
 * defaults go back to them: the statement's own (the payload) are set next.
 */
static void
rvd_trial_reset_planner_settings(void)
{
	int			n = 0;
	struct config_generic **own = get_explain_guc_options(&n);
	int			i;

	for (i = 0; i < n; i++)
	{
		const char *boot = own[i]->context <= PGC_SUSET ? rvd_boot_value(own[i]) : NULL;

		if (boot != NULL)
			rvd_trial_set(own[i]->name, boot);
	}
	pfree(own);
}

typedef struct RvdTrialRefusal
{
	Oid			function;		/* a volatile function, or InvalidOid */
	const char *why;			/* or another reason */
} RvdTrialRefusal;

static bool
rvd_volatile_function(Oid func_id, void *context)
{
	if (func_volatile(func_id) != PROVOLATILE_VOLATILE)
		return false;
	((RvdTrialRefusal *) context)->function = func_id;
	return true;
}

/* Whether an aggregate (or window function) has a volatile support function. */
static bool
rvd_aggregate_volatile(Oid aggfnoid, RvdTrialRefusal *refusal)
{
	HeapTuple	tup = SearchSysCache1(AGGFNOID, ObjectIdGetDatum(aggfnoid));
	Form_pg_aggregate agg;
	Oid			support[8];
	int			i;

	if (!HeapTupleIsValid(tup))
		return false;			/* a plain window function: its volatility is its own */
	agg = (Form_pg_aggregate) GETSTRUCT(tup);
	support[0] = agg->aggtransfn;
	support[1] = agg->aggfinalfn;
	support[2] = agg->aggcombinefn;
	support[3] = agg->aggserialfn;
	support[4] = agg->aggdeserialfn;
	support[5] = agg->aggmtransfn;
	support[6] = agg->aggminvtransfn;
	support[7] = agg->aggmfinalfn;
	ReleaseSysCache(tup);
	for (i = 0; i < (int) lengthof(support); i++)
		if (OidIsValid(support[i]) && rvd_volatile_function(support[i], refusal))
			return true;
	return false;
}

/*
 * Whether the parsed and rewritten statement holds anything a trial
 * refuses, in any of its (sub)queries: not a plain SELECT, a data-
 * modifying WITH, a row lock, a foreign table, a volatile function.
 */
static bool
rvd_trial_refused(Node *node, void *context)
{
	RvdTrialRefusal *refusal = (RvdTrialRefusal *) context;

	if (node == NULL)
		return false;
	if (IsA(node, Query))
	{
		Query	   *query = (Query *) node;

		if (query->commandType != CMD_SELECT || query->utilityStmt != NULL)
			refusal->why = "it is not a plain SELECT";
		else if (query->hasModifyingCTE)
			refusal->why = "it has a data-modifying WITH";
		else if (query->rowMarks != NIL)
			refusal->why = "it locks rows (FOR UPDATE/SHARE)";
		if (refusal->why != NULL)
			return true;
		return query_tree_walker(query, rvd_trial_refused, context, QTW_EXAMINE_RTES_BEFORE);
	}
	if (IsA(node, RangeTblEntry))
	{
		RangeTblEntry *rte = (RangeTblEntry *) node;

		if (rte->rtekind == RTE_RELATION && rte->relkind == RELKIND_FOREIGN_TABLE)
		{
			refusal->why = "it reads a foreign table";
			return true;
		}
		return false;
	}
	if (check_functions_in_node(node, rvd_volatile_function, context))
		return true;
	/* An aggregate is labeled immutable whatever its support functions are: they are checked. */
	if (IsA(node, Aggref) && rvd_aggregate_volatile(((Aggref *) node)->aggfnoid, refusal))
		return true;
	if (IsA(node, WindowFunc) && rvd_aggregate_volatile(((WindowFunc *) node)->winfnoid, refusal))
		return true;
	/* A domain's CHECK constraints run where a value is coerced to it. */
	if (IsA(node, CoerceToDomain))
	{
		DomainConstraintRef *ref = palloc0(sizeof(DomainConstraintRef));
		ListCell   *lc;

		InitDomainConstraintRef(((CoerceToDomain *) node)->resulttype, ref, CurrentMemoryContext, false);
		foreach(lc, ref->constraints)
		{
			DomainConstraintState *c = (DomainConstraintState *) lfirst(lc);

			if (c->check_expr != NULL && rvd_trial_refused((Node *) c->check_expr, context))
				return true;
		}
	}
	return expression_tree_walker(node, rvd_trial_refused, context);
}

/*
 * Check that a prepared trial statement is the query that was captured
 * (one statement, the same query id) and that nothing in it is refused.
 */
static void
rvd_trial_check(SPIPlanPtr plan, uint64 query_id)
{
	List	   *sources = SPI_plan_get_plan_sources(plan);
	CachedPlanSource *source;
	Query	   *query;
	RvdTrialRefusal refusal = {InvalidOid, NULL};

	if (list_length(sources) != 1)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("trial statement is not a single statement")));
	source = linitial(sources);
	if (list_length(source->query_list) != 1)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("trial statement is rewritten into several")));
	query = linitial_node(Query, source->query_list);
	if (rvd_trial_refused((Node *) query, &refusal))
	{
		if (OidIsValid(refusal.function))
			ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							errmsg("a trial does not run a statement that calls volatile function %s",
								   format_procedure(refusal.function))));
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("a trial does not run this statement: %s", refusal.why)));
	}
	if (query->queryId != query_id)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("trial statement parses to query id %lld, not %lld",
							   (long long) query->queryId, (long long) query_id)));
}

/* The statement's payload, read back (any inconsistency is an error). */
typedef struct RvdTrialStatement
{
	const char *search_path;
	const char *text;
	const char **names;			/* settings */
	const char **values;
	Oid		   *types;			/* parameters */
	const char **bytes;			/* NULL: a NULL value */
	int		   *lengths;
} RvdTrialStatement;

static void
rvd_trial_read(const RvdStatement *stmt, RvdTrialStatement *out)
{
	RvdReader	r;
	int			i;

	if (stmt->len < 0 || stmt->len > RVD_STATEMENT_DATA_LEN || stmt->nsettings < 0 ||
		stmt->nsettings > RVD_STATEMENT_DATA_LEN || stmt->nparams < 0 ||
		stmt->nparams > RVD_STATEMENT_DATA_LEN)
		elog(ERROR, "ruvector_dag: malformed statement payload");
	r.p = stmt->data;
	r.end = stmt->data + stmt->len;
	out->search_path = rvd_get_string(&r);
	out->text = rvd_get_string(&r);
	out->names = palloc(sizeof(char *) * Max(stmt->nsettings, 1));
	out->values = palloc(sizeof(char *) * Max(stmt->nsettings, 1));
	for (i = 0; i < stmt->nsettings; i++)
	{
		out->names[i] = rvd_get_string(&r);
		out->values[i] = rvd_get_string(&r);
	}
	out->types = palloc(sizeof(Oid) * Max(stmt->nparams, 1));
	out->bytes = palloc(sizeof(char *) * Max(stmt->nparams, 1));
	out->lengths = palloc(sizeof(int) * Max(stmt->nparams, 1));
	for (i = 0; i < stmt->nparams; i++)
	{
		out->types[i] = (Oid) rvd_get_int32(&r);
		out->lengths[i] = rvd_get_int32(&r);
		out->bytes[i] = out->lengths[i] == -1 ? NULL : rvd_get_bytes(&r, out->lengths[i]);
		if (!rvd_param_type_ok(out->types[i]))
			elog(ERROR, "ruvector_dag: malformed statement payload");
	}
	if (r.p != r.end)
		elog(ERROR, "ruvector_dag: malformed statement payload");
}

/* The statement's parameters, from their binary form. */
static ParamListInfo
rvd_trial_params(const RvdStatement *stmt, const RvdTrialStatement *ts)
{
	ParamListInfo params = makeParamList(stmt->nparams);
	int			i;

	for (i = 0; i < stmt->nparams; i++)
	{
		ParamExternData *p = &params->params[i];

		p->ptype = ts->types[i];
		p->pflags = PARAM_FLAG_CONST;
		p->isnull = ts->bytes[i] == NULL;
		p->value = (Datum) 0;
		if (!p->isnull)
		{
			StringInfoData buf;
			Oid			recv;
			Oid			ioparam;

			initStringInfo(&buf);
			appendBinaryStringInfo(&buf, ts->bytes[i], ts->lengths[i]);
			getTypeBinaryInputInfo(ts->types[i], &recv, &ioparam);
			p->value = OidReceiveFunctionCall(recv, &buf, ioparam, -1);
			if (buf.cursor != buf.len)
				ereport(ERROR, (errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
								errmsg("incorrect binary data format in trial parameter %d", i + 1)));
		}
	}
	return params;
}

/*
 * Run an offered statement once under an arm, as a trial (the file's
 * header says how), its output discarded.  Returns its elapsed time in
 * microseconds (planning included: a trial errs on the slow side), or -1
 * when it was cancelled at timeout_ms.  Any other error is re-thrown,
 * after the subtransaction is rolled back.  The caller holds a transaction
 * and no snapshot.
 */
double
rvd_trial_run(const RvdStatement *stmt, int arm, int timeout_ms)
{
	MemoryContext oldcontext = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	RvdTrialStatement ts;
	char	   *session_name;
	char	   *user_name;
	Oid			save_userid;
	int			save_sec;
	Oid			save_session = GetSessionUserId();
	Oid			save_outer = GetOuterUserId();
	bool		save_read_only = XactReadOnly;
	instr_time	start;			/* set before PG_TRY: read in PG_CATCH */
	instr_time	elapsed;
	volatile double result = -1;
	ErrorData  *volatile edata = NULL;

	rvd_trial_read(stmt, &ts);
	session_name = GetUserNameFromId(stmt->session_userid, true);
	user_name = GetUserNameFromId(stmt->userid, true);
	if (session_name == NULL || user_name == NULL)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
						errmsg("a role of the statement no longer exists")));
	if (!rvd_dag_trial_privileged_statements && rvd_roles_privileged(stmt->session_userid, stmt->userid))
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("statements of superusers, replication roles and members of pg_execute_server_program or pg_write_server_files are not tried"),
						errhint("ruvector.dag_trial_privileged_statements allows it.")));

	GetUserIdAndSecContext(&save_userid, &save_sec);
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcontext);
	INSTR_TIME_SET_CURRENT(start);
	PG_TRY();
	{
		ParamListInfo params;
		SPIPlanPtr	plan;
		SPIExecuteOptions options;
		instr_time	run_start;
		instr_time	run_time;
		int			i;

		/*
		 * The statement's settings, saved in this subtransaction: its roles
		 * (as SET SESSION AUTHORIZATION and SET ROLE set them, which a
		 * security-restricted operation may not), its search_path, the
		 * settings that change its parsing and planning, the arm's.
		 */
		(void) NewGUCNestLevel();
		rvd_trial_reset_planner_settings();
		rvd_trial_set("session_authorization", session_name);
		if (stmt->userid != stmt->session_userid)
			rvd_trial_set("role", user_name);
		rvd_trial_set("search_path", ts.search_path);
		for (i = 0; i < stmt->nsettings; i++)
			rvd_trial_set(ts.names[i], ts.values[i]);
		/* Not a user's execution: pg_stat_statements does not count it. */
		if (GetConfigOption("pg_stat_statements.track", true, false) != NULL)
			rvd_trial_set("pg_stat_statements.track", "none");
		(void) rvd_steer_begin(arm);
		rvd_suspend_capture(true);

		/* Read-only, and a security-restricted operation, as the statement's current_user. */
		SetUserIdAndSecContext(GetUserId(), save_sec | SECURITY_LOCAL_USERID_CHANGE |
							   SECURITY_RESTRICTED_OPERATION);
		XactReadOnly = true;
		rvd_trial_guarded = true;
		rvd_trial_executor_starts = 0;
		rvd_trusted_owners_read = false;	/* (the setting may have been reloaded) */

		/* The time limit (and SIGTERM's cancel) covers parsing and planning too. */
		rvd_trial_running = true;
		enable_timeout_after(STATEMENT_TIMEOUT, Max(timeout_ms, 1));
		PushActiveSnapshot(GetTransactionSnapshot());
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		params = rvd_trial_params(stmt, &ts);
		plan = SPI_prepare(ts.text, stmt->nparams, ts.types);
		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		rvd_trial_check(plan, stmt->query_id);

		memset(&options, 0, sizeof(options));
		options.params = params;
		options.read_only = true;
		options.dest = CreateDestReceiver(DestNone);
		INSTR_TIME_SET_CURRENT(run_start);
		(void) SPI_execute_plan_extended(plan, &options);
		disable_timeout(STATEMENT_TIMEOUT, false);
		rvd_trial_running = false;
		INSTR_TIME_SET_CURRENT(run_time);
		INSTR_TIME_SUBTRACT(run_time, run_start);
		result = INSTR_TIME_GET_MICROSEC(run_time);
		/* The timer fired after the statement finished: the cancel it sent is ours, drop it. */
		if (get_timeout_indicator(STATEMENT_TIMEOUT, true))
			QueryCancelPending = false;
		rvd_trial_guarded = false;
		SPI_finish();
		PopActiveSnapshot();
	}
	PG_CATCH();
	{
		disable_timeout(STATEMENT_TIMEOUT, false);
		rvd_trial_running = false;
		rvd_trial_guarded = false;
		INSTR_TIME_SET_CURRENT(elapsed);
		INSTR_TIME_SUBTRACT(elapsed, start);
		MemoryContextSwitchTo(oldcontext);
		edata = CopyErrorData();
		FlushErrorState();
	}
	PG_END_TRY();

	/*
	 * Always roll back: the trial's settings, notifications, temporary
	 * objects and transaction-level locks go with it.  Session-level
	 * advisory locks outlive a subtransaction: the worker takes none of its
	 * own, so any it holds now are the trial's.
	 */
	rvd_suspend_capture(false);
	RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(oldcontext);
	CurrentResourceOwner = oldowner;
	XactReadOnly = save_read_only;
	LockReleaseSession(USER_LOCKMETHOD);
	if (GetSessionUserId() != save_session || GetOuterUserId() != save_outer ||
		GetUserId() != save_userid || InSecurityRestrictedOperation())
		ereport(FATAL,
				(errmsg("ruvector_dag: a trial did not give the worker its own role back")));
	if (edata != NULL)
	{
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED &&
			INSTR_TIME_GET_MILLISEC(elapsed) >= (double) timeout_ms)
			return -1;			/* did not finish in time */
		ReThrowError(edata);
	}
	return result;
}
