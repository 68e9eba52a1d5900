/*-------------------------------------------------------------------------
 *
 * access.h
 *		Table arguments, ownership and read checks, the extension's own SQL.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RVD_ACCESS_H
#define RVD_ACCESS_H

#include "fmgr.h"

extern Oid	rvd_resolve_table(FunctionCallInfo fcinfo, int argno, bool for_change);
extern bool rvd_owns_relation(Oid relid);
extern bool rvd_may_read_relation(Oid relid);
extern uint64 rvd_spi_as_superuser(const char *sql, int nargs, Oid *types, Datum *values);
extern bool rvd_is_enrolled(Oid relid);

#endif							/* RVD_ACCESS_H */
