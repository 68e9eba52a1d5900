/*-------------------------------------------------------------------------
 *
 * guc.c
 *		The ruvector.* configuration settings.
 *
 * Names, defaults, ranges and contexts come from guc_defs.h, which is
 * generated from ruvector_dag/definitions/settings.py: the Python engine
 * and the shim read the same table.  PostgreSQL itself enforces ranges and enum choices,
 * so an out-of-range SET fails with PostgreSQL's usual message.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/guc.h"

#include "guc.h"

/* The variables, with their compiled-in defaults. */
#define RVD_GUC_BOOL(id, def, ctx, per_table, shortd, longd) bool rvd_##id = def;
#define RVD_GUC_INT(id, def, lo, hi, ctx, per_table, unit, shortd, longd) int rvd_##id = def;
#define RVD_GUC_REAL(id, def, lo, hi, ctx, per_table, shortd, longd) double rvd_##id = def;
#define RVD_GUC_STRING(id, def, ctx, shortd, longd) char *rvd_##id = NULL;
#define RVD_GUC_ENUM(id, def, ctx, per_table, shortd, longd) int rvd_##id = def;
#include "guc_defs.h"
#undef RVD_GUC_BOOL
#undef RVD_GUC_INT
#undef RVD_GUC_REAL
#undef RVD_GUC_STRING
#undef RVD_GUC_ENUM

/* Choices of each enum setting. */
#define RVD_GUC_BOOL(id, def, ctx, per_table, shortd, longd)
#define RVD_GUC_INT(id, def, lo, hi, ctx, per_table, unit, shortd, longd)
#define RVD_GUC_REAL(id, def, lo, hi, ctx, per_table, shortd, longd)
#define RVD_GUC_STRING(id, def, ctx, shortd, longd)
#define RVD_GUC_ENUM(id, def, ctx, per_table, shortd, longd) \
	static const struct config_enum_entry rvd_##id##_options[] = RVD_ENUM_OPTIONS_##id;
#include "guc_defs.h"
#undef RVD_GUC_BOOL
#undef RVD_GUC_INT
#undef RVD_GUC_REAL
#undef RVD_GUC_STRING
#undef RVD_GUC_ENUM

/*
 * Register every setting.  Called from _PG_init while shared_preload_libraries
 * is processed, so PGC_POSTMASTER settings are legal.
 */
void
rvd_define_gucs(void)
{
#define RVD_GUC_BOOL(id, def, ctx, per_table, shortd, longd) \
	DefineCustomBoolVariable("ruvector." #id, shortd, longd, &rvd_##id, def, ctx, 0, NULL, NULL, NULL);
#define RVD_GUC_INT(id, def, lo, hi, ctx, per_table, unit, shortd, longd) \
	DefineCustomIntVariable("ruvector." #id, shortd, longd, &rvd_##id, def, lo, hi, ctx, unit, NULL, NULL, NULL);
#define RVD_GUC_REAL(id, def, lo, hi, ctx, per_table, shortd, longd) \
	DefineCustomRealVariable("ruvector." #id, shortd, longd, &rvd_##id, def, lo, hi, ctx, 0, NULL, NULL, NULL);
#define RVD_GUC_STRING(id, def, ctx, shortd, longd) \
	DefineCustomStringVariable("ruvector." #id, shortd, longd, &rvd_##id, def, ctx, 0, NULL, NULL, NULL);
#define RVD_GUC_ENUM(id, def, ctx, per_table, shortd, longd) \
	DefineCustomEnumVariable("ruvector." #id, shortd, longd, &rvd_##id, def, rvd_##id##_options, ctx, 0, NULL, NULL, NULL);
#include "guc_defs.h"
#undef RVD_GUC_BOOL
#undef RVD_GUC_INT
#undef RVD_GUC_REAL
#undef RVD_GUC_STRING
#undef RVD_GUC_ENUM

	/* Nobody else may define ruvector.* settings; typos are reported. */
	MarkGUCPrefixReserved("ruvector");
}
