/*-------------------------------------------------------------------------
 *
 * corrections.c
 *		Row-count corrections in the planner (issue 20): the
 *		set_rel_pathlist and set_join_pathlist hooks.
 *
 * set_rel_pathlist_hook runs for each base relation once its paths are
 * built (before gather paths and set_cheapest); set_join_pathlist_hook at
 * the end of each add_paths_to_joinrel, once per (outer, inner, join type)
 * of a join relation, in both orders.  Both see the RelOptInfo whose row
 * count a correction would scale, and relkey.c's key of its relation set.
 *
 * So far the hooks only collect what they see, for
 * ruvector_dag._relation_keys (sql_corrections.c): the test that one join has
 * one key in every query that holds it.  Applying corrections comes next.
 * Both hooks chain to whatever was installed before, first.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "nodes/pathnodes.h"
#include "optimizer/paths.h"
#include "utils/memutils.h"

#include "corrections.h"
#include "relkey.h"

static set_rel_pathlist_hook_type prev_set_rel_pathlist = NULL;
static set_join_pathlist_hook_type prev_set_join_pathlist = NULL;

/* While collecting: what was seen, in this context (a child of the caller's). */
static MemoryContext collect_context = NULL;
static List *collected = NIL;

static void
collect(PlannerInfo *root, RelOptInfo *rel)
{
	Relids		base = rvd_base_relids(root, rel->relids);
	uint64		key = rvd_relset_key(root, rel->relids);
	MemoryContext old;
	RvdSeenRelation *seen;
	StringInfoData names;
	ListCell   *lc;
	int			i = -1;

	/* a join relation is seen once per (outer, inner) pair: keep the first */
	foreach(lc, collected)
	{
		RvdSeenRelation *s = (RvdSeenRelation *) lfirst(lc);

		if (s->query_level == (int) root->query_level && bms_equal(s->base_relids, base))
			return;
	}
	old = MemoryContextSwitchTo(collect_context);
	initStringInfo(&names);
	while ((i = bms_next_member(base, i)) >= 0)
		appendStringInfo(&names, "%s%s", names.len ? "," : "", root->simple_rte_array[i]->eref->aliasname);
	seen = palloc(sizeof(RvdSeenRelation));
	seen->query_level = (int) root->query_level;
	seen->relations = names.data;
	seen->key = key;
	seen->base_relids = bms_copy(base);
	seen->rows = rel->rows;
	collected = lappend(collected, seen);
	MemoryContextSwitchTo(old);
}

static void
rvd_set_rel_pathlist(PlannerInfo *root, RelOptInfo *rel, Index rti, RangeTblEntry *rte)
{
	if (prev_set_rel_pathlist)
		prev_set_rel_pathlist(root, rel, rti, rte);
	if (collect_context != NULL && rel->reloptkind == RELOPT_BASEREL)
		collect(root, rel);
}

static void
rvd_set_join_pathlist(PlannerInfo *root, RelOptInfo *joinrel, RelOptInfo *outerrel, RelOptInfo *innerrel,
					  JoinType jointype, JoinPathExtraData *extra)
{
	if (prev_set_join_pathlist)
		prev_set_join_pathlist(root, joinrel, outerrel, innerrel, jointype, extra);
	if (collect_context != NULL && joinrel->reloptkind == RELOPT_JOINREL)
		collect(root, joinrel);
}

void
rvd_collect_begin(void)
{
	if (collect_context != NULL)
		MemoryContextDelete(collect_context);
	collected = NIL;
	collect_context = AllocSetContextCreate(CurrentMemoryContext, "ruvector_dag relation keys",
											ALLOCSET_SMALL_SIZES);
}

List *
rvd_collect_end(void)
{
	List	   *result = collected;

	/* (the context is the caller's child: it goes with the caller's memory) */
	collect_context = NULL;
	collected = NIL;
	return result;
}

void
rvd_install_correction_hooks(void)
{
	prev_set_rel_pathlist = set_rel_pathlist_hook;
	set_rel_pathlist_hook = rvd_set_rel_pathlist;
	prev_set_join_pathlist = set_join_pathlist_hook;
	set_join_pathlist_hook = rvd_set_join_pathlist;
}
