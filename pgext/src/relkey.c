/*-------------------------------------------------------------------------
 *
 * relkey.c
 *		The key of a relation set for learned row-count corrections.
 *
 * A correction learned from one query must serve another that contains the
 * same join, and never a different one.  So the key is what decides the
 * set's row count, and nothing of the query around it:
 *
 *	- the tables it reads (their OIDs; a set holding anything but plain
 *	  tables has no key);
 *	- the restriction clauses of each member;
 *	- the join clauses among its members: the plain ones (joininfo) whose
 *	  required relations lie in the set, each equivalence class with members
 *	  of two or more of its tables (the members within the set: the planner
 *	  picks which equalities to enforce, the class is what holds), and each
 *	  outer, semi or anti join inside it (its type and its two sides' tables).
 *
 * A clause is fingerprinted by its expression tree, with a Var as (table
 * OID, column) rather than its range-table index, and a Const as its type
 * only: the constants are abstracted, as pg_stat_statements abstracts them.
 * Relids are never part of the key: they depend on the query's range table,
 * and since PostgreSQL 16 a join's relids also hold outer-join relids
 * (rvd_base_relids strips them, as pg_hint_plan learned the hard way).
 * The fingerprints are sorted and hashed, so the key does not depend on the
 * order of the FROM list or of the WHERE clause.
 *
 * Two instances of one table in a set (a self-join) share their Var
 * fingerprints: such sets may share a key with a symmetric variant.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "nodes/nodeFuncs.h"
#include "nodes/pathnodes.h"
#include "utils/memutils.h"

#include "relkey.h"

/* Kinds of items of a key, so that a table and a clause never collide. */
#define KEY_TABLE		1
#define KEY_RESTRICTION	2
#define KEY_JOIN_CLAUSE	3
#define KEY_EQ_CLASS	4
#define KEY_OUTER_JOIN	5

typedef struct Fingerprint
{
	PlannerInfo *root;
	uint64		hash;
	bool		valid;			/* false: a Var of something but a plain table */
} Fingerprint;

typedef struct KeyItems
{
	uint64	   *items;
	int			count;
	int			capacity;
} KeyItems;

static void
add_item(KeyItems *k, uint64 kind, uint64 value)
{
	if (k->count == k->capacity)
	{
		k->capacity = k->capacity ? k->capacity * 2 : 32;
		k->items = k->items ? repalloc(k->items, k->capacity * sizeof(uint64))
			: palloc(k->capacity * sizeof(uint64));
	}
	k->items[k->count++] = hash_combine64(kind, value);
}

static int
cmp_uint64(const void *a, const void *b)
{
	uint64		x = *(const uint64 *) a;
	uint64		y = *(const uint64 *) b;

	return (x > y) - (x < y);
}

/* Sort and hash a list of fingerprints (as a set when unique: duplicates count once). */
static uint64
hash_items(KeyItems *k, bool unique)
{
	int			n = 0;

	if (k->count == 0)
		return 0;
	qsort(k->items, k->count, sizeof(uint64), cmp_uint64);
	for (int i = 0; i < k->count; i++)
		if (!unique || n == 0 || k->items[n - 1] != k->items[i])
			k->items[n++] = k->items[i];
	return hash_bytes_extended((const unsigned char *) k->items, n * sizeof(uint64), 0x72766467);
}

static bool
fingerprint_walker(Node *node, void *context)
{
	Fingerprint *fp = (Fingerprint *) context;

	if (node == NULL)
	{
		fp->hash = hash_combine64(fp->hash, 0);
		return false;
	}
	fp->hash = hash_combine64(fp->hash, (uint64) nodeTag(node));
	switch (nodeTag(node))
	{
		case T_Var:
			{
				Var		   *var = (Var *) node;
				RangeTblEntry *rte;

				if (var->varlevelsup != 0 || var->varno < 1 ||
					var->varno >= (Index) fp->root->simple_rel_array_size ||
					(rte = fp->root->simple_rte_array[var->varno]) == NULL ||
					rte->rtekind != RTE_RELATION)
				{
					fp->valid = false;
					return false;
				}
				/* (varnullingrels, PostgreSQL 16, is left out: the outer joins are keyed as such) */
				fp->hash = hash_combine64(fp->hash, rte->relid);
				fp->hash = hash_combine64(fp->hash, (uint64) (int64) var->varattno);
				return false;
			}
		case T_Const:
			/* the constant abstracted: only its type */
			fp->hash = hash_combine64(fp->hash, ((Const *) node)->consttype);
			return false;
		case T_Param:
			fp->hash = hash_combine64(fp->hash, ((Param *) node)->paramkind);
			fp->hash = hash_combine64(fp->hash, ((Param *) node)->paramtype);
			return false;
		case T_OpExpr:
		case T_DistinctExpr:
		case T_NullIfExpr:
			fp->hash = hash_combine64(fp->hash, ((OpExpr *) node)->opno);
			break;
		case T_ScalarArrayOpExpr:
			fp->hash = hash_combine64(fp->hash, ((ScalarArrayOpExpr *) node)->opno);
			fp->hash = hash_combine64(fp->hash, ((ScalarArrayOpExpr *) node)->useOr);
			break;
		case T_FuncExpr:
			fp->hash = hash_combine64(fp->hash, ((FuncExpr *) node)->funcid);
			break;
		case T_BoolExpr:
			fp->hash = hash_combine64(fp->hash, ((BoolExpr *) node)->boolop);
			break;
		case T_NullTest:
			fp->hash = hash_combine64(fp->hash, ((NullTest *) node)->nulltesttype);
			break;
		case T_BooleanTest:
			fp->hash = hash_combine64(fp->hash, ((BooleanTest *) node)->booltesttype);
			break;
		default:
			break;
	}
	return expression_tree_walker(node, fingerprint_walker, context);
}

/* A clause's fingerprint, or false if it reads something but plain tables. */
static bool
fingerprint(PlannerInfo *root, Node *clause, uint64 *hash)
{
	Fingerprint fp = {root, 0, true};

	(void) fingerprint_walker(clause, &fp);
	*hash = fp.hash;
	return fp.valid;
}

Relids
rvd_base_relids(PlannerInfo *root, Relids relids)
{
	return bms_intersect(relids, root->all_baserels);
}

/* The sorted OIDs of a set's tables, hashed (one side of an outer join). */
static uint64
tables_hash(PlannerInfo *root, Relids relids)
{
	KeyItems	k = {0};
	int			i = -1;

	while ((i = bms_next_member(relids, i)) >= 0)
		if (i < root->simple_rel_array_size && root->simple_rte_array[i] != NULL)
			add_item(&k, KEY_TABLE, root->simple_rte_array[i]->relid);
	return hash_items(&k, false);
}

uint64
rvd_relset_key(PlannerInfo *root, Relids relids)
{
	Relids		base = rvd_base_relids(root, relids);
	int			members = bms_num_members(base);
	KeyItems	k = {0};
	List	   *join_clauses = NIL;
	ListCell   *lc;
	uint64		fp;
	int			i = -1;

	if (members == 0)
		return 0;
	while ((i = bms_next_member(base, i)) >= 0)
	{
		RelOptInfo *rel = i < root->simple_rel_array_size ? root->simple_rel_array[i] : NULL;
		RangeTblEntry *rte = i < root->simple_rel_array_size ? root->simple_rte_array[i] : NULL;

		if (rel == NULL || rte == NULL || rte->rtekind != RTE_RELATION || rel->reloptkind != RELOPT_BASEREL)
			return 0;
		add_item(&k, KEY_TABLE, rte->relid);
		foreach(lc, rel->baserestrictinfo)
		{
			RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);

			if (rinfo->pseudoconstant)
				continue;
			if (!fingerprint(root, (Node *) rinfo->clause, &fp))
				return 0;
			add_item(&k, KEY_RESTRICTION, fp);
		}
		if (members == 1)
			continue;
		foreach(lc, rel->joininfo)
		{
			RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);
			Relids		needed = rvd_base_relids(root, rinfo->required_relids);

			/* (each join clause sits in every member's joininfo: counted once) */
			if (!rinfo->pseudoconstant && bms_is_subset(needed, base))
				join_clauses = list_append_unique_ptr(join_clauses, rinfo);
		}
	}
	foreach(lc, join_clauses)
	{
		if (!fingerprint(root, (Node *) lfirst_node(RestrictInfo, lc)->clause, &fp))
			return 0;
		add_item(&k, KEY_JOIN_CLAUSE, fp);
	}
	if (members > 1)
	{
		foreach(lc, root->eq_classes)
		{
			EquivalenceClass *ec = (EquivalenceClass *) lfirst(lc);
			KeyItems	m = {0};
			Relids		seen = NULL;
			ListCell   *lm;

			/* a class with a constant is enforced as restrictions of each member (above) */
			if (ec->ec_has_const || ec->ec_has_volatile || ec->ec_merged != NULL)
				continue;
			foreach(lm, ec->ec_members)
			{
				EquivalenceMember *em = (EquivalenceMember *) lfirst(lm);
				Relids		rels = rvd_base_relids(root, em->em_relids);
				int			only;

				if (em->em_is_child || !bms_get_singleton_member(rels, &only) || !bms_is_member(only, base))
					continue;
				if (!fingerprint(root, (Node *) em->em_expr, &fp))
					return 0;
				add_item(&m, KEY_EQ_CLASS, fp);
				seen = bms_add_member(seen, only);
			}
			if (bms_num_members(seen) >= 2)
				add_item(&k, KEY_EQ_CLASS, hash_items(&m, true));	/* (a class's members: a set) */
		}
		foreach(lc, root->join_info_list)
		{
			SpecialJoinInfo *sj = lfirst_node(SpecialJoinInfo, lc);
			Relids		lhs = rvd_base_relids(root, sj->min_lefthand);
			Relids		rhs = rvd_base_relids(root, sj->min_righthand);

			if (sj->jointype == JOIN_INNER || !bms_is_subset(lhs, base) || !bms_is_subset(rhs, base))
				continue;
			add_item(&k, KEY_OUTER_JOIN,
					 hash_combine64(sj->jointype,
									hash_combine64(tables_hash(root, lhs), tables_hash(root, rhs))));
		}
	}
	return hash_items(&k, false);
}
