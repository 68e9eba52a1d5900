/*-------------------------------------------------------------------------
 *
 * enroll.h
 *		Enrollment changes, applied to the shared registry at commit.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RVD_ENROLL_H
#define RVD_ENROLL_H

extern void rvd_enroll_init(void);
/* Queue an enrollment (add) or its removal (relid InvalidOid: the whole database) for commit. */
extern void rvd_enroll_queue(bool add, Oid relid);
extern void rvd_pin_queue(uint64 query_id, int arm);
extern int	rvd_enroll_pending_adds(Oid relid);

#endif							/* RVD_ENROLL_H */
