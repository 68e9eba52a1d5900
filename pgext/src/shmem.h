/*-------------------------------------------------------------------------
 *
 * shmem.h
 *		Shared memory of every subsystem, requested and set up at preload.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RVD_SHMEM_H
#define RVD_SHMEM_H

extern void rvd_shmem_init_hooks(void);

#endif							/* RVD_SHMEM_H */
