/*-------------------------------------------------------------------------
 *
 * guc.h
 *		The ruvector.* settings as C variables (guc.c).
 *
 * One C variable per setting, named rvd_<name>; see guc_defs.h, generated
 * from the Python side's settings table.  C reads its own settings through
 * these variables, never by looking their names up.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RVD_GUC_H
#define RVD_GUC_H

#define RVD_GUC_BOOL(id, def, ctx, per_table, shortd, longd) extern bool rvd_##id;
#define RVD_GUC_INT(id, def, lo, hi, ctx, per_table, unit, shortd, longd) extern int rvd_##id;
#define RVD_GUC_REAL(id, def, lo, hi, ctx, per_table, shortd, longd) extern double rvd_##id;
#define RVD_GUC_STRING(id, def, ctx, shortd, longd) extern char *rvd_##id;
#define RVD_GUC_ENUM(id, def, ctx, per_table, shortd, longd) extern int rvd_##id;
#include "guc_defs.h"
#undef RVD_GUC_BOOL
#undef RVD_GUC_INT
#undef RVD_GUC_REAL
#undef RVD_GUC_STRING
#undef RVD_GUC_ENUM

extern void rvd_define_gucs(void);

#endif							/* RVD_GUC_H */
