/*-------------------------------------------------------------------------
 *
 * ruvector_dag.h
 *		Map of the ruvector_dag shim, and an umbrella over its headers.
 *
 * One captured statement's path through the files:
 *
 *	capture.c		ExecutorStart decides to capture (an enrolled table,
 *					registry.c's private copy; the worker's sampling, from
 *					directives.c) and asks for row instrumentation;
 *					ExecutorEnd walks the executed plan into one record
 *	ring.c			... and pushes it onto the lock-free trajectory ring
 *	worker.c		the background worker wakes, and in a transaction calls
 *	py_worker.c		Worker.drain() of the Python engine (seam_defs.h names it),
 *	py_pgmodule.c	which reads the ring through _ruvector_pg.read_ring, learns,
 *					and publishes back through _ruvector_pg:
 *	directives.c	set_decision / set_capture_rules / set_sample_fraction:
 *					steering decisions and capture rules in shared memory,
 *					one generation counter, one private copy per backend
 *	plan.c			the next planning of the statement: the planner hook
 *					finds its arm and plans under the arm's settings (EXPLAIN
 *					shows them); its planning time goes back to capture.c.
 *
 * Before a user's execution gets an exploratory arm, the worker tries it:
 * capture.c's ExecutorEnd offers the statement (trials.c, asked for by a
 * capture rule), and the worker runs it under the arm with a time limit
 * (trials.c, called through _ruvector_pg.trial).
 *
 * The files, in layers: a file includes the headers of, and calls, only
 * files listed before it (tests/unit/test_c_layering.py checks that the
 * include graph and the call graph between .c files are acyclic, and that
 * the Makefile's OBJS, in this order, lists callees before callers).
 *
 *	0. definitions
 *	seam_defs.h		names shared with Python (generated)
 *	guc_defs.h, trajectory_defs.h, steering_defs.h	tables (generated)
 *	guc.c			the ruvector.* settings, as rvd_<name> variables
 *	normalize.c		a statement's text with its constants as $n (the
 *					worker's, for the steering view)
 *	relkey.c		the key of a relation set for row-count corrections
 *					(its tables and clause fingerprints, constants abstracted)
 *	rvd_python.h	Python.h, included after PostgreSQL's headers
 *
 *	1. shared subsystems: each owns its struct, size/init and named lock
 *	registry.c		enrolled tables, and the backend's private copy
 *	directives.c	what the worker publishes for backends
 *	learn_stats.c	the learning counters the worker publishes per table
 *	request.c		the session -> worker request slot; the worker's pid, latch
 *	ring.c			the trajectory ring (counts into registry.c)
 *
 *	2. query path, enrollment
 *	corrections.c	set_rel_pathlist / set_join_pathlist hooks: row-count
 *					corrections (so far: collecting relation keys)
 *	plan.c			planner and EXPLAIN hooks: planning under an arm
 *	trials.c		statements offered for trials (shared slots); the trials
 *					and their guard
 *	capture.c		executor hooks: capture of trajectories
 *	shmem.c			shmem_request/startup hooks: sum and call each
 *					subsystem's size/init (layer 1 and trials.c)
 *	enroll.c		enrollment changes applied to the registry at commit
 *	access.c		table arguments, ownership/read checks, own SQL as superuser
 *
 *	3. the Python bridge (in the manner of PL/Python)
 *	py_elog.c		Python exception -> ereport with SQLSTATE; engine warnings
 *	py_main.c		interpreter start-up, sys.path, the SQL dispatcher
 *	py_typeio.c		Datum <-> Python for the engine's SQL functions
 *	py_pgmodule.c	_ruvector_pg, the worker's Python's view of PostgreSQL
 *					(ring, SPI execute, directives, statements, trials, stats)
 *	py_worker.c		the one Worker instance and calls of its methods
 *
 *	4. the background worker and the SQL entry points
 *	worker.c		the background worker's main loop
 *	sql_engine.c	functions computed by the Python engine (one C symbol)
 *	sql_enroll.c	ruvector_enable_neural_dag and friends
 *	sql_learn.c		requests to the worker, published learning counters
 *	sql_steer.c		steering arms and decisions, pin/try/unpin
 *	sql_state.c		views of the shared state (counters, ring, layout)
 *	sql_mincut.c	read-only check of ruvector_dag_mincut_plan's query
 *	sql_corrections.c	ruvector_dag._relation_keys (the keys' test)
 *	vector_type.c	the ruvector data type
 *
 *	5. init.c		_PG_init: refuses to half-load, registers everything
 *
 * Each .c file includes only the headers it uses; this one includes them
 * all, for a reader or a tool that wants the whole interface at once.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUVECTOR_DAG_H
#define RUVECTOR_DAG_H

#include "access.h"
#include "capture.h"
#include "corrections.h"
#include "directives.h"
#include "enroll.h"
#include "guc.h"
#include "learn_stats.h"
#include "plan.h"
#include "registry.h"
#include "relkey.h"
#include "request.h"
#include "ring.h"
#include "seam_defs.h"
#include "shmem.h"
#include "trials.h"
#include "worker.h"

#endif							/* RUVECTOR_DAG_H */
