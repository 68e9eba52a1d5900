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
 * While a correction set is active (rvd_corrections_begin), the hooks scale
 * the row count of each relation set whose key has a factor:
 *
 *	- a base relation: rel->rows, the rows of every path built so far
 *	  (pathlist and partial_pathlist) and of every parameterized size
 *	  (ppilist), so the joins above are sized and costed on it;
 *	- a join relation: once, at the first call for it (the paths of that
 *	  first pair get their rows scaled; the pairs after it build theirs on
 *	  the corrected size).  GEQO frees join relations and may build another
 *	  at the same address, so a join counts as corrected only while its
 *	  pointer still holds the rows we set.
 *
 * Known limits, by construction of the hooks: parameterized sizes created
 * after the hook (get_parameterized_*_size) are not scaled; the costs of a
 * base relation's access paths keep the uncorrected selectivity; child join
 * relations of partitionwise joins (RELOPT_OTHER_JOINREL) are not corrected.
 *
 * They also collect what they see, for ruvector_dag._relation_keys
 * (sql_corrections.c).  Both hooks chain to whatever was installed before,
 * first.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "nodes/pathnodes.h"
#include "optimizer/optimizer.h"
#include "optimizer/paths.h"
#include "utils/hsearch.h"
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
	/* (keyed only once a set is new: the join hook calls us once per input pair) */
	old = MemoryContextSwitchTo(collect_context);
	initStringInfo(&names);
	while ((i = bms_next_member(base, i)) >= 0)
		appendStringInfo(&names, "%s%s", names.len ? "," : "", root->simple_rte_array[i]->eref->aliasname);
	seen = palloc(sizeof(RvdSeenRelation));
	seen->query_level = (int) root->query_level;
	seen->relations = names.data;
	seen->key = rvd_relset_key(root, rel->relids);
	seen->base_relids = bms_copy(base);
	seen->rows = rel->rows;
	collected = lappend(collected, seen);
	MemoryContextSwitchTo(old);
}

/* ------------------------------------------------------------------------
 * The active correction set: key -> factor, for the planning in progress
 * ------------------------------------------------------------------------
 */
typedef struct CorrectionEntry
{
	uint64		key;
	double		factor;
} CorrectionEntry;

/*
 * A relation of this planning whose row count differs from PostgreSQL's own
 * estimate, by how much (scale: corrected / PostgreSQL's), and the rows it
 * had when we last saw it.
 *
 * A factor is relative to PostgreSQL's own estimate of the set, made from
 * its own estimates of the inputs.  But a join's estimate is computed from
 * its inputs' rows, corrected already: for an inner join it is PostgreSQL's
 * own times both inputs' scales.  So a join with a factor gets rows =
 * estimate / (outer scale x inner scale) x factor, and a join without one
 * keeps its estimate and carries the inputs' scales up.  (An outer, semi or
 * anti join's size is not exactly that product; the factor learned for it
 * absorbs the difference, as it is learned in the same plannings.)
 *
 * GEQO frees join relations and may build another at the same address: an
 * entry counts only while its pointer still holds the rows we recorded.
 */
typedef struct Scaled
{
	RelOptInfo *rel;
	double		rows;
	double		scale;
} Scaled;

static HTAB *active = NULL;
static MemoryContext active_context = NULL;
static List *scaled = NIL;
static int	corrected_count = 0;

void
rvd_corrections_begin(const uint64 *keys, const double *factors, int n)
{
	HASHCTL		ctl;

	rvd_corrections_end();
	active_context = AllocSetContextCreate(TopMemoryContext, "ruvector_dag corrections", ALLOCSET_SMALL_SIZES);
	ctl.keysize = sizeof(uint64);
	ctl.entrysize = sizeof(CorrectionEntry);
	ctl.hcxt = active_context;
	active = hash_create("ruvector_dag corrections", Max(n, 8), &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	for (int i = 0; i < n; i++)
	{
		bool		found;
		CorrectionEntry *e = hash_search(active, &keys[i], HASH_ENTER, &found);

		e->factor = factors[i];
	}
}

int
rvd_corrections_end(void)
{
	int			n = corrected_count;

	if (active_context != NULL)
		MemoryContextDelete(active_context);
	active_context = NULL;
	active = NULL;
	scaled = NIL;
	corrected_count = 0;
	return n;
}

int
rvd_corrections_count(void)
{
	return corrected_count;
}

static bool
factor_of(PlannerInfo *root, RelOptInfo *rel, double *factor)
{
	uint64		key;
	CorrectionEntry *e;

	if (active == NULL || (key = rvd_relset_key(root, rel->relids)) == 0)
		return false;
	e = hash_search(active, &key, HASH_FIND, NULL);
	if (e == NULL)
		return false;
	*factor = e->factor;
	return true;
}

/* The entry of a relation seen in this planning (and not rebuilt since), or NULL. */
static Scaled *
scaled_entry(RelOptInfo *rel)
{
	ListCell   *lc;

	foreach(lc, scaled)
	{
		Scaled	   *s = (Scaled *) lfirst(lc);

		if (s->rel == rel && s->rows == rel->rows)
			return s;
	}
	return NULL;
}

static void
remember(RelOptInfo *rel, double scale)
{
	MemoryContext old = MemoryContextSwitchTo(active_context);
	Scaled	   *s = palloc(sizeof(Scaled));

	s->rel = rel;
	s->rows = rel->rows;
	s->scale = scale;
	scaled = lappend(scaled, s);
	MemoryContextSwitchTo(old);
}

static double
scale_of(RelOptInfo *rel)
{
	Scaled	   *s = scaled_entry(rel);

	return s ? s->scale : 1.0;
}

static void
scale_paths(List *paths, double factor)
{
	ListCell   *lc;

	foreach(lc, paths)
	{
		Path	   *path = (Path *) lfirst(lc);

		if (path->param_info != NULL)
			path->rows = path->param_info->ppi_rows;	/* (scaled with the ppilist) */
		else
			path->rows = clamp_row_est(path->rows * factor);
	}
}

static void
correct_base(PlannerInfo *root, RelOptInfo *rel)
{
	double		factor;
	double		before = rel->rows;
	ListCell   *lc;

	if (!factor_of(root, rel, &factor))
		return;
	rel->rows = clamp_row_est(rel->rows * factor);
	foreach(lc, rel->ppilist)
	{
		ParamPathInfo *ppi = (ParamPathInfo *) lfirst(lc);

		ppi->ppi_rows = clamp_row_est(ppi->ppi_rows * factor);
	}
	scale_paths(rel->pathlist, factor);
	scale_paths(rel->partial_pathlist, factor);
	remember(rel, rel->rows / Max(before, 1.0));
	corrected_count++;
}

static void
correct_join(PlannerInfo *root, RelOptInfo *joinrel, RelOptInfo *outerrel, RelOptInfo *innerrel)
{
	double		factor;
	double		inputs;
	double		before = joinrel->rows;
	double		own;

	if (scaled_entry(joinrel) != NULL)
		return;					/* seen already (and not rebuilt by GEQO since) */
	/* its size was computed by the first pair, this one: from the inputs' corrected rows */
	inputs = scale_of(outerrel) * scale_of(innerrel);
	if (!factor_of(root, joinrel, &factor))
	{
		if (inputs != 1.0)
			remember(joinrel, inputs);
		return;
	}
	own = before / inputs;		/* PostgreSQL's own estimate, from its own input estimates */
	joinrel->rows = clamp_row_est(own * factor);
	scale_paths(joinrel->pathlist, joinrel->rows / Max(before, 1.0));
	scale_paths(joinrel->partial_pathlist, joinrel->rows / Max(before, 1.0));
	remember(joinrel, joinrel->rows / Max(own, 1.0));
	corrected_count++;
}

static void
rvd_set_rel_pathlist(PlannerInfo *root, RelOptInfo *rel, Index rti, RangeTblEntry *rte)
{
	if (prev_set_rel_pathlist)
		prev_set_rel_pathlist(root, rel, rti, rte);
	if (rel->reloptkind != RELOPT_BASEREL)
		return;
	if (active != NULL)
		correct_base(root, rel);
	if (collect_context != NULL)
		collect(root, rel);
}

static void
rvd_set_join_pathlist(PlannerInfo *root, RelOptInfo *joinrel, RelOptInfo *outerrel, RelOptInfo *innerrel,
					  JoinType jointype, JoinPathExtraData *extra)
{
	if (prev_set_join_pathlist)
		prev_set_join_pathlist(root, joinrel, outerrel, innerrel, jointype, extra);
	if (joinrel->reloptkind != RELOPT_JOINREL)
		return;
	if (active != NULL)
		correct_join(root, joinrel, outerrel, innerrel);
	if (collect_context != NULL)
		collect(root, joinrel);
}

void
rvd_collect_begin(void)
{
	/* every caller ends a collection in PG_FINALLY: none is left open (its context would be gone) */
	Assert(collect_context == NULL);
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
