/*-------------------------------------------------------------------------
 *
 * enroll.c
 *		Enrolling tables: ruvector_enable_neural_dag and friends.
 *
 * An enrollment lives in two places: the table ruvector_dag.enrolled_tables
 * (the durable truth, reloaded by the worker at start) and the shared
 * registry (what the hooks consult).  The table is written in the caller's
 * transaction; the registry changes only when that transaction commits, via
 * a transaction callback, so an aborted ENABLE never starts capture and an
 * aborted DISABLE never stops it.
 *
 * Enrollment is for the table's owner (GetUserId(), the calling role) or a
 * superuser; system catalogs and tables of extensions are refused.  The
 * catalog row is written as the bootstrap superuser so that ordinary owners
 * need no privileges on the extension's schema, as a security-restricted
 * operation with search_path = pg_catalog, pg_temp and schema-qualified
 * names (docs/security.md), so that nothing the caller defined runs.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/transam.h"
#include "access/xact.h"
#include "catalog/catalog.h"
#include "catalog/dependency.h"
#include "catalog/pg_authid.h"
#include "catalog/namespace.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/syscache.h"
#include "utils/varlena.h"

#include "ruvector_dag.h"

/* ------------------------------------------------------------------------
 * Registry changes applied at commit
 * ------------------------------------------------------------------------
 */
typedef struct RvdPendingOp
{
	bool		add;
	Oid			relid;			/* InvalidOid with !add: every table of the database */
	SubTransactionId subid;
} RvdPendingOp;

static object_access_hook_type prev_object_access_hook = NULL;

/* List of RvdPendingOp *, allocated in TopTransactionContext. */
static List *pending_ops = NIL;

static void
rvd_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			if (pending_ops != NIL)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that enrolled or disenrolled tables")));
			break;
		case XACT_EVENT_COMMIT:
			foreach(lc, pending_ops)
			{
				RvdPendingOp *op = (RvdPendingOp *) lfirst(lc);

				if (!op->add)
					rvd_registry_remove(MyDatabaseId, op->relid);	/* InvalidOid: all */
				else if (!rvd_registry_add(MyDatabaseId, op->relid))
					elog(WARNING, "ruvector_dag: enrollment registry is full; relation %u not captured until restart",
						 op->relid);
			}
			pending_ops = NIL;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			pending_ops = NIL;	/* memory goes with TopTransactionContext */
			break;
		default:
			break;
	}
}

static void
rvd_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					 SubTransactionId parentSubid, void *arg)
{
	ListCell   *lc;

	if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		foreach(lc, pending_ops)
		{
			RvdPendingOp *op = (RvdPendingOp *) lfirst(lc);

			if (op->subid == mySubid)
				op->subid = parentSubid;
		}
	}
	else if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		foreach(lc, pending_ops)
		{
			RvdPendingOp *op = (RvdPendingOp *) lfirst(lc);

			if (op->subid == mySubid)
				pending_ops = foreach_delete_current(pending_ops, lc);
		}
	}
}

static void
rvd_queue_op(bool add, Oid relid)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	RvdPendingOp *op = palloc(sizeof(RvdPendingOp));

	op->add = add;
	op->relid = relid;
	op->subid = GetCurrentSubTransactionId();
	pending_ops = lappend(pending_ops, op);
	MemoryContextSwitchTo(old);
}

/*
 * DROP EXTENSION ruvector_dag drops the enrollment table with it; forget the
 * database's enrollments at commit too, so that nothing is captured for a
 * database where the extension no longer exists.
 */
static void
rvd_object_access(ObjectAccessType access, Oid classId, Oid objectId, int subId, void *arg)
{
	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);
	if (access == OAT_DROP && classId == ExtensionRelationId &&
		objectId == get_extension_oid("ruvector_dag", true))
		rvd_queue_op(false, InvalidOid);
}

void
rvd_enroll_init(void)
{
	RegisterXactCallback(rvd_xact_callback, NULL);
	RegisterSubXactCallback(rvd_subxact_callback, NULL);
	prev_object_access_hook = object_access_hook;
	object_access_hook = rvd_object_access;
}

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

/*
 * System catalogs and the tables of extensions (ours included) are never
 * enrolled, not even by a superuser: 42501, as PostgreSQL refuses to alter
 * a system catalog.
 */
static void
rvd_check_enrollable(Oid relid)
{
	Oid			nsp = get_rel_namespace(relid);
	char	   *nspname = get_namespace_name(nsp);
	Oid			ext;

	if (relid < FirstNormalObjectId || IsCatalogRelationOid(relid) || IsCatalogNamespace(nsp) ||
		IsToastNamespace(nsp) || (nspname != NULL && strcmp(nspname, "information_schema") == 0))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot enroll system relation \"%s\"", get_rel_name(relid))));
	ext = getExtensionOfObject(RelationRelationId, relid);
	if (OidIsValid(ext))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot enroll table \"%s\": it belongs to extension \"%s\"",
						get_rel_name(relid), get_extension_name(ext))));
}

static void
rvd_require_worker_database(void)
{
	char	   *db = get_database_name(MyDatabaseId);

	if (db == NULL || rvd_dag_worker_database == NULL || strcmp(db, rvd_dag_worker_database) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tables can only be enrolled in database \"%s\"",
						rvd_dag_worker_database ? rvd_dag_worker_database : ""),
				 errhint("Connect to that database, or set ruvector.dag_worker_database in postgresql.conf and restart.")));
}

/* ------------------------------------------------------------------------
 * Per-table configuration: jsonb merged over the current settings
 * ------------------------------------------------------------------------
 */
typedef enum RvdGucKind
{
	RVD_BOOL, RVD_INT, RVD_REAL, RVD_STRING, RVD_ENUM
} RvdGucKind;

typedef struct RvdGucInfo
{
	const char *name;
	RvdGucKind	kind;
	double		min;
	double		max;
	GucContext	context;
	const struct config_enum_entry *options;
} RvdGucInfo;

/* Enum choices, from the same generated table guc.c registers. */
#define RVD_GUC_BOOL(id, def, ctx, s, l)
#define RVD_GUC_INT(id, def, lo, hi, ctx, unit, s, l)
#define RVD_GUC_REAL(id, def, lo, hi, ctx, s, l)
#define RVD_GUC_STRING(id, def, ctx, s, l)
#define RVD_GUC_ENUM(id, def, ctx, s, l) \
	static const struct config_enum_entry rvd_choices_##id[] = RVD_ENUM_OPTIONS_##id;
#include "guc_defs.h"
#undef RVD_GUC_BOOL
#undef RVD_GUC_INT
#undef RVD_GUC_REAL
#undef RVD_GUC_STRING
#undef RVD_GUC_ENUM

static const RvdGucInfo rvd_gucs[] = {
#define RVD_GUC_BOOL(id, def, ctx, s, l) {#id, RVD_BOOL, 0, 0, ctx, NULL},
#define RVD_GUC_INT(id, def, lo, hi, ctx, unit, s, l) {#id, RVD_INT, lo, hi, ctx, NULL},
#define RVD_GUC_REAL(id, def, lo, hi, ctx, s, l) {#id, RVD_REAL, lo, hi, ctx, NULL},
#define RVD_GUC_STRING(id, def, ctx, s, l) {#id, RVD_STRING, 0, 0, ctx, NULL},
#define RVD_GUC_ENUM(id, def, ctx, s, l) {#id, RVD_ENUM, 0, 0, ctx, rvd_choices_##id},
#include "guc_defs.h"
#undef RVD_GUC_BOOL
#undef RVD_GUC_INT
#undef RVD_GUC_REAL
#undef RVD_GUC_STRING
#undef RVD_GUC_ENUM
};

/* Settings a table may override: user-settable learning parameters. */
static bool
rvd_is_table_setting(const RvdGucInfo *g)
{
	return g->context == PGC_USERSET && g->kind != RVD_STRING &&
		strcmp(g->name, "neural_dag_enabled") != 0;
}

static char *
rvd_allowed_keys(void)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < (int) lengthof(rvd_gucs); i++)
		if (rvd_is_table_setting(&rvd_gucs[i]))
			appendStringInfo(&buf, "%s%s", buf.len ? ", " : "", rvd_gucs[i].name);
	return buf.data;
}

/* Validate one config value; returns its JSON text. */
static char *
rvd_config_value(const RvdGucInfo *g, JsonbValue *v)
{
	switch (g->kind)
	{
		case RVD_BOOL:
			if (v->type != jbvBool)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("config key \"%s\" must be a boolean", g->name)));
			return pstrdup(v->val.boolean ? "true" : "false");
		case RVD_INT:
		case RVD_REAL:
			{
				double		d;
				char	   *num;

				if (v->type != jbvNumeric)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("config key \"%s\" must be a number", g->name)));
				num = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
				d = strtod(num, NULL);
				if (g->kind == RVD_INT && d != floor(d))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("config key \"%s\" must be an integer, got %s", g->name, num)));
				if (d < g->min || d > g->max)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("config key \"%s\" is %s, outside the valid range [%g, %g]",
									g->name, num, g->min, g->max)));
				return num;
			}
		case RVD_ENUM:
			{
				char	   *s;
				const struct config_enum_entry *e;
				StringInfoData choices;

				if (v->type != jbvString)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("config key \"%s\" must be a string", g->name)));
				s = pnstrdup(v->val.string.val, v->val.string.len);
				initStringInfo(&choices);
				for (e = g->options; e->name != NULL; e++)
				{
					if (strcmp(e->name, s) == 0)
						return psprintf("\"%s\"", s);
					appendStringInfo(&choices, "%s%s", choices.len ? ", " : "", e->name);
				}
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("config key \"%s\" has invalid value \"%s\"", g->name, s),
						 errhint("Valid values: %s.", choices.data)));
				return NULL;	/* keep compiler quiet */
			}
		default:
			elog(ERROR, "unexpected setting kind");
	}
	return NULL;
}

/* The current value of a setting, as JSON. */
static char *
rvd_current_value(const RvdGucInfo *g)
{
	char		gucname[NAMEDATALEN + 16];
	const char *val;

	snprintf(gucname, sizeof(gucname), "ruvector.%s", g->name);
	val = GetConfigOption(gucname, false, false);
	switch (g->kind)
	{
		case RVD_BOOL:
			return pstrdup(strcmp(val, "on") == 0 ? "true" : "false");
		case RVD_INT:
		case RVD_REAL:
			return pstrdup(val);
		default:
			return psprintf("\"%s\"", val);
	}
}

/*
 * Merge the config jsonb over the current settings.  Unknown keys, wrong
 * types and out-of-range values are 22023 naming the key.
 */
static char *
rvd_merge_config(Jsonb *config)
{
	char	   *values[lengthof(rvd_gucs)];
	StringInfoData out;
	int			i;

	memset(values, 0, sizeof(values));
	if (config != NULL)
	{
		JsonbIterator *it;
		JsonbValue	v;
		JsonbIteratorToken tok;

		if (!JB_ROOT_IS_OBJECT(config) || JB_ROOT_IS_SCALAR(config))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("config must be a JSON object")));
		it = JsonbIteratorInit(&config->root);
		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			char	   *key;
			int			match = -1;

			if (tok != WJB_KEY)
				continue;
			key = pnstrdup(v.val.string.val, v.val.string.len);
			for (i = 0; i < (int) lengthof(rvd_gucs); i++)
				if (rvd_is_table_setting(&rvd_gucs[i]) && strcmp(rvd_gucs[i].name, key) == 0)
					match = i;
			if (match < 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("config key \"%s\" is not recognised", key),
						 errhint("Allowed keys: %s.", rvd_allowed_keys())));
			tok = JsonbIteratorNext(&it, &v, true);
			if (tok != WJB_VALUE)
				elog(ERROR, "unexpected jsonb token");
			values[match] = rvd_config_value(&rvd_gucs[match], &v);
		}
	}

	initStringInfo(&out);
	appendStringInfoChar(&out, '{');
	for (i = 0; i < (int) lengthof(rvd_gucs); i++)
	{
		if (!rvd_is_table_setting(&rvd_gucs[i]))
			continue;
		appendStringInfo(&out, "%s\"%s\": %s", out.len > 1 ? ", " : "", rvd_gucs[i].name,
						 values[i] ? values[i] : rvd_current_value(&rvd_gucs[i]));
	}
	appendStringInfoChar(&out, '}');
	return out.data;
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
int
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
static uint64
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

static char *
rvd_qualified_name(Oid relid)
{
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid));
}

static int
rvd_registry_count(void)
{
	int			i;
	int			n = 0;

	LWLockAcquire(rvd_shared->registry_lock, LW_SHARED);
	for (i = 0; i < RVD_MAX_ENROLLED; i++)
		if (rvd_shared->tables[i].relid != InvalidOid)
			n++;
	LWLockRelease(rvd_shared->registry_lock);
	return n;
}

/* ------------------------------------------------------------------------
 * SQL functions
 * ------------------------------------------------------------------------
 */
PG_FUNCTION_INFO_V1(ruvector_enable_neural_dag);
Datum
ruvector_enable_neural_dag(PG_FUNCTION_ARGS)
{
	Oid			relid = rvd_resolve_table(fcinfo, 0, true);
	Jsonb	   *config = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	char	   *merged;
	Oid			types[4] = {OIDOID, TEXTOID, JSONBOID, OIDOID};
	Datum		values[4];

	rvd_check_enrollable(relid);
	rvd_require_worker_database();
	merged = rvd_merge_config(config);
	if (!rvd_registry_lookup(MyDatabaseId, relid, NULL) && rvd_registry_count() >= RVD_MAX_ENROLLED)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("cannot enroll more than %d tables", RVD_MAX_ENROLLED)));

	values[0] = ObjectIdGetDatum(relid);
	values[1] = CStringGetTextDatum(rvd_qualified_name(relid));
	values[2] = DirectFunctionCall1(jsonb_in, CStringGetDatum(merged));
	values[3] = ObjectIdGetDatum(GetUserId());
	rvd_spi_as_superuser(
		"INSERT INTO ruvector_dag.enrolled_tables (relid, table_name, config, enabled_by) "
		"VALUES ($1, $2, $3, $4) ON CONFLICT (relid) DO UPDATE SET table_name = EXCLUDED.table_name, "
		"config = EXCLUDED.config, enabled_by = EXCLUDED.enabled_by, enabled_at = pg_catalog.now()",
		4, types, values);
	rvd_queue_op(true, relid);
	PG_RETURN_BOOL(true);
}

#define RVD_DELETE_ENROLLMENT \
	"DELETE FROM ruvector_dag.enrolled_tables WHERE relid OPERATOR(pg_catalog.=) $1"

PG_FUNCTION_INFO_V1(ruvector_disable_neural_dag);
Datum
ruvector_disable_neural_dag(PG_FUNCTION_ARGS)
{
	Oid			relid = rvd_resolve_table(fcinfo, 0, true);
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};

	if (rvd_spi_as_superuser(RVD_DELETE_ENROLLMENT,
							 1, types, values) == 0 &&
		!rvd_registry_lookup(MyDatabaseId, relid, NULL))
	{
		ereport(WARNING,
				(errmsg("neural DAG was not enabled for table %s", rvd_qualified_name(relid))));
		PG_RETURN_BOOL(false);
	}
	rvd_queue_op(false, relid);
	PG_RETURN_BOOL(true);
}

PG_FUNCTION_INFO_V1(ruvector_neural_dag_enabled);
Datum
ruvector_neural_dag_enabled(PG_FUNCTION_ARGS)
{
	Oid			relid = rvd_resolve_table(fcinfo, 0, false);

	PG_RETURN_BOOL(rvd_neural_dag_enabled && rvd_registry_lookup(MyDatabaseId, relid, NULL));
}

/*
 * Called by the sql_drop event trigger for each dropped relation: forget
 * its enrollment.  Does nothing for a relation that still exists, so it is
 * harmless to call directly.
 */
PG_FUNCTION_INFO_V1(rvd_forget_relation);
Datum
rvd_forget_relation(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};

	if (SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
		PG_RETURN_VOID();
	if (rvd_spi_as_superuser(RVD_DELETE_ENROLLMENT,
							 1, types, values) > 0 ||
		rvd_registry_lookup(MyDatabaseId, relid, NULL))
		rvd_queue_op(false, relid);
	PG_RETURN_VOID();
}
