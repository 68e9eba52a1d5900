/*-------------------------------------------------------------------------
 *
 * enroll.c
 *		Enrollment and pin changes, applied to shared memory at commit.
 *
 * An enrollment lives in two places: the table ruvector_dag.enrolled_tables
 * (the durable truth, reloaded by the worker at start) and the shared
 * registry (registry.c, what the hooks consult).  The table is written in
 * the caller's transaction (sql_enroll.c); the registry changes only when
 * that transaction commits, via a transaction callback, so an aborted
 * ENABLE never starts capture and an aborted DISABLE never stops it.
 * Pins (ruvector_dag_pin_arm, ruvector_dag_unpin) work the same way: a row
 * of ruvector_dag.pinned_arms, and a decision in directives.c from commit.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "utils/memutils.h"

#include "directives.h"
#include "enroll.h"
#include "registry.h"

/* ------------------------------------------------------------------------
 * Registry changes applied at commit
 * ------------------------------------------------------------------------
 */
typedef struct RvdPendingOp
{
	bool		pin;			/* a pin (query_id, arm; arm 0: unpin), else an enrollment */
	bool		add;
	Oid			relid;			/* InvalidOid with !add: every table of the database */
	uint64		query_id;
	int			arm;
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
						 errmsg("cannot PREPARE a transaction that enrolled or disenrolled tables or pinned arms")));
			break;
		case XACT_EVENT_COMMIT:
			foreach(lc, pending_ops)
			{
				RvdPendingOp *op = (RvdPendingOp *) lfirst(lc);

				if (op->pin)
				{
					/* committed already: nothing here may raise (an ERROR would be a PANIC) */
					if (!rvd_apply_pin(op->query_id, op->arm))
						ereport(LOG,
								(errmsg("ruvector_dag: the steering decision cache is full of pins; query %llu is pinned from the worker's next sync",
										(unsigned long long) op->query_id)));
				}
				else if (!op->add)
					rvd_registry_remove(MyDatabaseId, op->relid);	/* InvalidOid: all */
				else if (!rvd_registry_add(MyDatabaseId, op->relid))
					ereport(LOG,	/* not the user's business: the server log only */
							(errmsg("ruvector_dag: enrollment registry is full; relation %u is captured once there is room",
									op->relid)));
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
rvd_queue(RvdPendingOp *model)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	RvdPendingOp *op = palloc(sizeof(RvdPendingOp));

	*op = *model;
	op->subid = GetCurrentSubTransactionId();
	pending_ops = lappend(pending_ops, op);
	MemoryContextSwitchTo(old);
}

void
rvd_enroll_queue(bool add, Oid relid)
{
	RvdPendingOp op = {.pin = false, .add = add, .relid = relid};

	rvd_queue(&op);
}

/*
 * Enrollments this transaction will add at commit, other than relid: the
 * capacity check at enrollment counts them, so that a full registry is an
 * error there, never something found at commit.
 */
int
rvd_enroll_pending_adds(Oid relid)
{
	ListCell   *lc;
	int			n = 0;

	foreach(lc, pending_ops)
	{
		RvdPendingOp *op = (RvdPendingOp *) lfirst(lc);

		if (!op->pin && op->add && op->relid != relid)
			n++;
	}
	return n;
}

/* Pin query_id to arm (0: unpin) when the transaction commits. */
void
rvd_pin_queue(uint64 query_id, int arm)
{
	RvdPendingOp op = {.pin = true, .query_id = query_id, .arm = arm};

	rvd_queue(&op);
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
		rvd_enroll_queue(false, InvalidOid);
}

void
rvd_enroll_init(void)
{
	RegisterXactCallback(rvd_xact_callback, NULL);
	RegisterSubXactCallback(rvd_subxact_callback, NULL);
	prev_object_access_hook = object_access_hook;
	object_access_hook = rvd_object_access;
}

