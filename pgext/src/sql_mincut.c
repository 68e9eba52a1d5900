/*-------------------------------------------------------------------------
 *
 * sql_mincut.c
 *		The one piece of ruvector_dag_mincut_plan(query) that must be C:
 *		deciding that the query is a single read-only SELECT before the
 *		SQL wrapper plans it with EXPLAIN (which never executes it).  The
 *		criticalities are computed by the engine (ruvector_dag/engine/mincut.py).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(rvd_check_read_only_query);

static void
rvd_refuse(const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("query must be a single read-only SELECT statement: %s", why)));
}

/* A SELECT (or VALUES) that writes nothing and locks nothing. */
static void
rvd_check_select(Node *node)
{
	SelectStmt *s;
	ListCell   *lc;

	if (node == NULL || !IsA(node, SelectStmt))
		rvd_refuse("only SELECT, VALUES and WITH ... SELECT can be analysed");
	s = (SelectStmt *) node;
	if (s->intoClause != NULL)
		rvd_refuse("SELECT INTO creates a table");
	if (s->lockingClause != NIL)
		rvd_refuse("FOR UPDATE/SHARE locks rows");
	if (s->withClause != NULL)
		foreach(lc, s->withClause->ctes)
			rvd_check_select(((CommonTableExpr *) lfirst(lc))->ctequery);
	if (s->larg != NULL)
		rvd_check_select((Node *) s->larg);
	if (s->rarg != NULL)
		rvd_check_select((Node *) s->rarg);
}

Datum
rvd_check_read_only_query(PG_FUNCTION_ARGS)
{
	char	   *query;
	List	   *stmts;

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("query must not be NULL")));
	query = text_to_cstring(PG_GETARG_TEXT_PP(0));
	stmts = pg_parse_query(query);	/* 42601 for a syntax error */
	if (list_length(stmts) != 1)
		rvd_refuse(list_length(stmts) == 0 ? "it is empty" : "it holds several statements");
	rvd_check_select(((RawStmt *) linitial(stmts))->stmt);
	PG_RETURN_VOID();
}
