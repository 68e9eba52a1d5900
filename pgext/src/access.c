/*-------------------------------------------------------------------------
 *
 * access.c
 *		Who may do what: the table arguments of the SQL functions, the
 *		ownership and read checks (docs/security.md), and the extension's
 *		own statements, run as the bootstrap superuser.
 *
 * Enrollment is for the table's owner (GetUserId(), the calling role) or a
 * superuser.  The catalog row is written as the bootstrap superuser so that
 * ordinary owners need no privileges on the extension's schema, as a
 * security-restricted operation with search_path = pg_catalog, pg_temp and
 * schema-qualified names (docs/security.md), so that nothing the caller
 * defined runs.  ruvector_dag.may_read(oid), the SQL face of
 * rvd_may_read_relation used by the row security policies, is here too.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/varlena.h"

#include "access.h"

/* ------------------------------------------------------------------------
 * Argument checks
 * ------------------------------------------------------------------------
 */

/*
 * Resolve a table name as regclass does, on the caller's search_path (before
 * any switch); 42P01 if missing.  for_change: the caller must own it.
 */
Oid
rvd_resolve_table(FunctionCallInfo fcinfo, int argno, bool for_change)
{
	text	   *name;
	List	   *names;
	Oid			relid;
	char		relkind;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("table_name must not be NULL")));
	name = PG_GETARG_TEXT_PP(argno);
	names = textToQualifiedNameList(name);
	relid = RangeVarGetRelid(makeRangeVarFromNameList(names), NoLock, true);
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"%s\" does not exist", text_to_cstring(name))));
	relkind = get_rel_relkind(relid);
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE &&
		relkind != RELKIND_MATVIEW)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table or materialized view", text_to_cstring(name))));
	if (for_change && !rvd_owns_relation(relid))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of table %s to change its neural DAG enrollment",
						get_rel_name(relid))));
	return relid;
}

/*
 * Whether the calling role owns relid (or is a superuser).  GetUserId() is
 * the role that called us, before any switch of ours: none of our functions
 * is SECURITY DEFINER, so inside a user's SECURITY DEFINER function it is
 * that function's owner, never the session user.  A relation that does not
 * exist (so has no owner) is owned by nobody.
 */
bool
rvd_owns_relation(Oid relid)
{
	if (!OidIsValid(relid) || !SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
		return false;
#if PG_VERSION_NUM >= 160000
	return object_ownercheck(RelationRelationId, relid, GetUserId());
#else
	return pg_class_ownercheck(relid, GetUserId());
#endif
}

/*
 * Whether the calling role may read rows about relid (captured plans,
 * counters, patterns, evidence): superusers, members of pg_read_all_stats
 * and the relation's owner (docs/security.md).  The SQL functions filter
 * with it and the row security policies of the extension's tables call it
 * through ruvector_dag.may_read(oid).
 */
bool
rvd_may_read_relation(Oid relid)
{
	return superuser() || has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_STATS) ||
		rvd_owns_relation(relid);
}

PG_FUNCTION_INFO_V1(rvd_may_read);
Datum
rvd_may_read(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(rvd_may_read_relation(PG_GETARG_OID(0)));
}

/* ------------------------------------------------------------------------
 * The durable row, written as the bootstrap superuser
 * ------------------------------------------------------------------------
 */

/*
 * Open a GUC nest level with search_path = pg_catalog, pg_temp: what every
 * statement the extension runs for itself is parsed under.  Close it with
 * AtEOXact_GUC(true, level); an error closes it with the (sub)transaction.
 */
static int
rvd_internal_search_path(void)
{
	int			level = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return level;
}

/*
 * Run one of the extension's own statements (schema-qualified) with rights
 * the caller lacks: as the bootstrap superuser, in a security-restricted
 * operation (no SET ROLE, no temporary objects, no deferred triggers of the
 * caller's) under search_path = pg_catalog, pg_temp, so that no operator,
 * function or table the caller defined can be reached.  An error restores
 * the user and the settings with the (sub)transaction.
 */
uint64
rvd_spi_as_superuser(const char *sql, int nargs, Oid *types, Datum *values)
{
	Oid			save_userid;
	int			save_sec;
	int			level;
	uint64		processed;
	int			rc;

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID,
						   save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	level = rvd_internal_search_path();
	SPI_connect();
	rc = SPI_execute_with_args(sql, nargs, types, values, NULL, false, 0);
	if (rc < 0)
		elog(ERROR, "ruvector_dag: SPI_execute failed: %s", SPI_result_code_string(rc));
	processed = SPI_processed;
	SPI_finish();
	AtEOXact_GUC(true, level);
	SetUserIdAndSecContext(save_userid, save_sec);
	return processed;
}

/* Whether relid has an enrollment row (committed, or written by this transaction). */
bool
rvd_is_enrolled(Oid relid)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};

	return rvd_spi_as_superuser("SELECT FROM ruvector_dag.enrolled_tables WHERE relid OPERATOR(pg_catalog.=) $1",
								1, types, values) > 0;
}

