/*-------------------------------------------------------------------------
 *
 * vector_type.c
 *		The ruvector data type: a dense float4 vector.
 *
 * Its text form is pgvector's ('[1,2,3]'), and so is its on-disk layout
 * (int16 dimension count, int16 unused, float4 elements), so values move
 * between the two by text or binary copy.  It stores the centroids and plan
 * embeddings of the ruvector_dag schema.  Elements must be finite; the
 * dimension is between 1 and RVD_VECTOR_MAX_DIM.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/shortest_dec.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"

#define RVD_VECTOR_MAX_DIM 16000

typedef struct RuVector
{
	int32		vl_len_;		/* varlena header (do not touch directly!) */
	int16		dim;			/* number of elements */
	int16		unused;			/* reserved, always 0 */
	float4		x[FLEXIBLE_ARRAY_MEMBER];
} RuVector;

#define RUVECTOR_SIZE(dim)	(offsetof(RuVector, x) + sizeof(float4) * (dim))
#define DatumGetRuVector(d)	((RuVector *) PG_DETOAST_DATUM(d))

static RuVector *
rvd_vector_new(int dim)
{
	RuVector   *v = palloc0(RUVECTOR_SIZE(dim));

	SET_VARSIZE(v, RUVECTOR_SIZE(dim));
	v->dim = dim;
	return v;
}

static void
rvd_check_dim(int dim)
{
	if (dim < 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("ruvector must have at least 1 dimension")));
	if (dim > RVD_VECTOR_MAX_DIM)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("ruvector cannot have more than %d dimensions", RVD_VECTOR_MAX_DIM)));
}

static void
rvd_check_element(float4 value)
{
	if (isnan(value))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("NaN not allowed in ruvector")));
	if (isinf(value))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("infinite value not allowed in ruvector")));
}

PG_FUNCTION_INFO_V1(ruvector_in);
Datum
ruvector_in(PG_FUNCTION_ARGS)
{
	char	   *lit = PG_GETARG_CSTRING(0);
	char	   *p = lit;
	float4	   *buf;
	int			dim = 0;
	int			cap = 16;
	RuVector   *v;

	while (isspace((unsigned char) *p))
		p++;
	if (*p != '[')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type ruvector: \"%s\"", lit),
				 errdetail("Vector contents must start with \"[\".")));
	p++;
	buf = palloc(sizeof(float4) * cap);
	while (isspace((unsigned char) *p))
		p++;
	if (*p == ']')
		rvd_check_dim(0);
	for (;;)
	{
		char	   *end;
		float4		value;

		if (dim >= RVD_VECTOR_MAX_DIM)
			rvd_check_dim(dim + 1);
		errno = 0;
		value = strtof(p, &end);
		if (end == p)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid input syntax for type ruvector: \"%s\"", lit)));
		if (errno == ERANGE && isinf(value))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("\"%.*s\" is out of range for type ruvector", (int) (end - p), p)));
		rvd_check_element(value);
		if (dim == cap)
		{
			cap *= 2;
			buf = repalloc(buf, sizeof(float4) * cap);
		}
		buf[dim++] = value;
		p = end;
		while (isspace((unsigned char) *p))
			p++;
		if (*p == ',')
		{
			p++;
			continue;
		}
		if (*p == ']')
			break;
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type ruvector: \"%s\"", lit)));
	}
	p++;
	while (isspace((unsigned char) *p))
		p++;
	if (*p != '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type ruvector: \"%s\"", lit),
				 errdetail("Junk after closing right bracket.")));

	v = rvd_vector_new(dim);
	memcpy(v->x, buf, sizeof(float4) * dim);
	PG_RETURN_POINTER(v);
}

PG_FUNCTION_INFO_V1(ruvector_out);
Datum
ruvector_out(PG_FUNCTION_ARGS)
{
	RuVector   *v = DatumGetRuVector(PG_GETARG_DATUM(0));
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '[');
	for (i = 0; i < v->dim; i++)
	{
		char		num[FLOAT_SHORTEST_DECIMAL_LEN];

		if (i > 0)
			appendStringInfoChar(&buf, ',');
		float_to_shortest_decimal_buf(v->x[i], num);
		appendStringInfoString(&buf, num);
	}
	appendStringInfoChar(&buf, ']');
	PG_RETURN_CSTRING(buf.data);
}

PG_FUNCTION_INFO_V1(ruvector_recv);
Datum
ruvector_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int16		dim = pq_getmsgint(buf, sizeof(int16));
	int16		unused = pq_getmsgint(buf, sizeof(int16));
	RuVector   *v;
	int			i;

	rvd_check_dim(dim);
	if (unused != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid binary ruvector: reserved field must be 0")));
	v = rvd_vector_new(dim);
	for (i = 0; i < dim; i++)
	{
		v->x[i] = pq_getmsgfloat4(buf);
		rvd_check_element(v->x[i]);
	}
	PG_RETURN_POINTER(v);
}

PG_FUNCTION_INFO_V1(ruvector_send);
Datum
ruvector_send(PG_FUNCTION_ARGS)
{
	RuVector   *v = DatumGetRuVector(PG_GETARG_DATUM(0));
	StringInfoData buf;
	int			i;

	pq_begintypsend(&buf);
	pq_sendint(&buf, v->dim, sizeof(int16));
	pq_sendint(&buf, 0, sizeof(int16));
	for (i = 0; i < v->dim; i++)
		pq_sendfloat4(&buf, v->x[i]);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* real[] -> ruvector: one-dimensional, no NULLs, finite. */
PG_FUNCTION_INFO_V1(ruvector_from_real_array);
Datum
ruvector_from_real_array(PG_FUNCTION_ARGS)
{
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(0);
	int			n;
	RuVector   *v;
	int			i;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("array must be one-dimensional to cast to ruvector")));
	if (ARR_HASNULL(arr))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("array must not contain NULLs to cast to ruvector")));
	n = ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));
	rvd_check_dim(n);
	v = rvd_vector_new(n);
	memcpy(v->x, ARR_DATA_PTR(arr), sizeof(float4) * n);
	for (i = 0; i < n; i++)
		rvd_check_element(v->x[i]);
	PG_RETURN_POINTER(v);
}

/* ruvector -> real[] */
PG_FUNCTION_INFO_V1(ruvector_to_real_array);
Datum
ruvector_to_real_array(PG_FUNCTION_ARGS)
{
	RuVector   *v = DatumGetRuVector(PG_GETARG_DATUM(0));
	Datum	   *elems = palloc(sizeof(Datum) * v->dim);
	int			i;

	for (i = 0; i < v->dim; i++)
		elems[i] = Float4GetDatum(v->x[i]);
	PG_RETURN_POINTER(construct_array(elems, v->dim, FLOAT4OID, sizeof(float4), true, TYPALIGN_INT));
}

PG_FUNCTION_INFO_V1(ruvector_dims);
Datum
ruvector_dims(PG_FUNCTION_ARGS)
{
	RuVector   *v = DatumGetRuVector(PG_GETARG_DATUM(0));

	PG_RETURN_INT32(v->dim);
}

PG_FUNCTION_INFO_V1(ruvector_eq);
Datum
ruvector_eq(PG_FUNCTION_ARGS)
{
	RuVector   *a = DatumGetRuVector(PG_GETARG_DATUM(0));
	RuVector   *b = DatumGetRuVector(PG_GETARG_DATUM(1));
	int			i;

	/* Element-wise float comparison, so that 0 equals -0. */
	if (a->dim != b->dim)
		PG_RETURN_BOOL(false);
	for (i = 0; i < a->dim; i++)
		if (a->x[i] != b->x[i])
			PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(true);
}
