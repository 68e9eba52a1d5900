/*-------------------------------------------------------------------------
 *
 * sql_enroll.c
 *		Enrolling tables: ruvector_enable_neural_dag and friends.
 *
 * The SQL functions write the durable row (ruvector_dag.enrolled_tables,
 * through access.c's rvd_spi_as_superuser) in the caller's transaction and
 * queue the registry change for commit (enroll.c).  System catalogs and
 * tables of extensions are refused; enrollment is for the table's owner or
 * a superuser (access.c).
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

#include "access.h"
#include "enroll.h"
#include "guc.h"
#include "registry.h"

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
	bool		per_table;		/* a table may override it (Setting.per_table) */
	const struct config_enum_entry *options;
	const void *variable;		/* its C variable (guc.h) */
} RvdGucInfo;

/* Enum choices, from the same generated table guc.c registers. */
#define RVD_GUC_BOOL(id, def, ctx, per_table, s, l)
#define RVD_GUC_INT(id, def, lo, hi, ctx, per_table, unit, s, l)
#define RVD_GUC_REAL(id, def, lo, hi, ctx, per_table, s, l)
#define RVD_GUC_STRING(id, def, ctx, s, l)
#define RVD_GUC_ENUM(id, def, ctx, per_table, s, l) \
	static const struct config_enum_entry rvd_choices_##id[] = RVD_ENUM_OPTIONS_##id;
#include "guc_defs.h"
#undef RVD_GUC_BOOL
#undef RVD_GUC_INT
#undef RVD_GUC_REAL
#undef RVD_GUC_STRING
#undef RVD_GUC_ENUM

static const RvdGucInfo rvd_gucs[] = {
#define RVD_GUC_BOOL(id, def, ctx, per_table, s, l) {#id, RVD_BOOL, 0, 0, ctx, per_table, NULL, &rvd_##id},
#define RVD_GUC_INT(id, def, lo, hi, ctx, per_table, unit, s, l) {#id, RVD_INT, lo, hi, ctx, per_table, NULL, &rvd_##id},
#define RVD_GUC_REAL(id, def, lo, hi, ctx, per_table, s, l) {#id, RVD_REAL, lo, hi, ctx, per_table, NULL, &rvd_##id},
#define RVD_GUC_STRING(id, def, ctx, s, l) {#id, RVD_STRING, 0, 0, ctx, false, NULL, &rvd_##id},
#define RVD_GUC_ENUM(id, def, ctx, per_table, s, l) {#id, RVD_ENUM, 0, 0, ctx, per_table, rvd_choices_##id, &rvd_##id},
#include "guc_defs.h"
#undef RVD_GUC_BOOL
#undef RVD_GUC_INT
#undef RVD_GUC_REAL
#undef RVD_GUC_STRING
#undef RVD_GUC_ENUM
};

/* Settings a table may override: declared per_table in ruvector_dag/definitions/settings.py. */
static bool
rvd_is_table_setting(const RvdGucInfo *g)
{
	return g->per_table;
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

/*
 * The current value of a setting, as JSON: read from its C variable, in
 * the form SHOW gives it (GetConfigOption: %d, %g, the enum's name).
 */
static char *
rvd_current_value(const RvdGucInfo *g)
{
	switch (g->kind)
	{
		case RVD_BOOL:
			return pstrdup(*(const bool *) g->variable ? "true" : "false");
		case RVD_INT:
			return psprintf("%d", *(const int *) g->variable);
		case RVD_REAL:
			return psprintf("%g", *(const double *) g->variable);
		case RVD_ENUM:
			{
				const struct config_enum_entry *e;

				for (e = g->options; e->name != NULL; e++)
					if (e->val == *(const int *) g->variable)
						return psprintf("\"%s\"", e->name);
				elog(ERROR, "ruvector.%s has no valid value", g->name);
			}
			break;
		default:
			{
				const char *val = *(char *const *) g->variable;

				return psprintf("\"%s\"", val ? val : "");
			}
	}
	return NULL;				/* keep the compiler quiet */
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

static char *
rvd_qualified_name(Oid relid)
{
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid));
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
	if (!rvd_registry_lookup(MyDatabaseId, relid, NULL))
	{
		int			enrolled = rvd_registry_count();
		int			pending = rvd_enroll_pending_adds(relid);

		if (enrolled + pending >= rvd_registry_size())
			ereport(ERROR,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("cannot enroll more than %d tables", rvd_registry_size()),
					 errdetail("%d tables are enrolled, %d more by this transaction.", enrolled, pending),
					 errhint("Disable the enrollments no longer needed with ruvector_disable_neural_dag() "
							 "(ruvector_dag.enrolled_tables lists them), or raise ruvector.max_enrolled_tables "
							 "and restart the server.")));
	}

	values[0] = ObjectIdGetDatum(relid);
	values[1] = CStringGetTextDatum(rvd_qualified_name(relid));
	values[2] = DirectFunctionCall1(jsonb_in, CStringGetDatum(merged));
	values[3] = ObjectIdGetDatum(GetUserId());
	rvd_spi_as_superuser(
		"INSERT INTO ruvector_dag.enrolled_tables (relid, table_name, config, enabled_by) "
		"VALUES ($1, $2, $3, $4) ON CONFLICT (relid) DO UPDATE SET table_name = EXCLUDED.table_name, "
		"config = EXCLUDED.config, enabled_by = EXCLUDED.enabled_by, enabled_at = pg_catalog.now()",
		4, types, values);
	rvd_enroll_queue(true, relid);
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
	rvd_enroll_queue(false, relid);
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
		rvd_enroll_queue(false, relid);
	PG_RETURN_VOID();
}
