/*-------------------------------------------------------------------------
 *
 * capture.h
 *		Executor hooks that capture trajectories.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RVD_CAPTURE_H
#define RVD_CAPTURE_H

extern void rvd_install_capture_hooks(void);

/* Name of an operator code of the record (trajectory_defs.h), "Other" past the last. */
extern const char *rvd_operator_name(int code);

#endif							/* RVD_CAPTURE_H */
