/*-------------------------------------------------------------------------
 *
 * normalize.c
 *		A statement's text with its constants replaced by $n, the form in
 *		which pg_stat_statements shows a query.
 *
 * The worker keeps the text of each query it steers, for the steering view
 * (issue 17): a DBA reads which query was changed, never a user's
 * constants.  The text is lexed with PostgreSQL's own scanner (the one
 * pg_stat_statements uses to find its constants' lengths), so comments,
 * quoted identifiers, dollar quoting and escapes are what the server says
 * they are.  pg_stat_statements knows which tokens are constants from the
 * parse (its JumbleState); here a token is a constant by its first
 * characters: a number, a string in any of its forms ('...', E'...',
 * B'...', X'...', U&'...', $tag$...$tag$).  Parameters ($1) stay,
 * and constants are numbered after the highest of them, as
 * pg_stat_statements numbers them.  One difference: a negative number
 * keeps its minus sign ("-$1"), the parse folds it into the constant.
 *
 * The scanner is given the settings the statement ran under
 * (standard_conforming_strings, backslash_quote, recorded with it): lexed
 * under the worker's own, 'a\\'' ... could end a string elsewhere and leave a
 * constant in the text as a bare word.
 *
 * TRUE, FALSE and NULL stay (pg_stat_statements replaces them: they are
 * constants of the parse), as do comments (pg_stat_statements keeps them
 * too).  N'...' comes out as N$1: the scanner reads N as a keyword first.
 *
 * Runs in the worker only, on a text a backend offered; the scanner raises
 * an ERROR on a text it cannot lex, which the caller (py_pgmodule.c) turns
 * into "no text".  Nothing here runs in a user's query.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/keywords.h"
#include "lib/stringinfo.h"
#include "parser/scanner.h"

#include "normalize.h"

/* Whether the token starting at tok (NUL-terminated by the scanner) is a constant. */
static bool
rvd_token_is_constant(const char *tok)
{
	char		c = tok[0];

	if ((c >= '0' && c <= '9') || (c == '.' && tok[1] >= '0' && tok[1] <= '9'))
		return true;
	if (c == '\'')
		return true;
	if (strchr("eEbBxXnN", c) != NULL && tok[1] == '\'')
		return true;
	if ((c == 'u' || c == 'U') && tok[1] == '&' && tok[2] == '\'')
		return true;
	if (c == '$' && !(tok[1] >= '0' && tok[1] <= '9'))
		return true;			/* $$...$$ or $tag$...$tag$ */
	return false;
}

/* The parameter number of a token $n, or 0 (clamped: the sum below cannot overflow). */
static int
rvd_token_param(const char *tok)
{
	if (tok[0] != '$' || !(tok[1] >= '0' && tok[1] <= '9'))
		return 0;
	return (int) Min(strtol(tok + 1, NULL, 10), 1000000L);
}

/* text, its constants replaced by $n (palloc'd), lexed under the given settings.  May raise the scanner's ERROR. */
char *
rvd_normalize_query(const char *text, bool standard_conforming_strings, int backslash_quote)
{
	core_yyscan_t yyscanner;
	core_yy_extra_type yyextra;
	core_YYSTYPE yylval;
	YYLTYPE		yylloc;
	int		   *starts;
	int		   *lengths;
	int			n = 0;
	int			capacity = 16;
	int			highest_param = 0;
	int			last = 0;
	int			i;
	StringInfoData buf;

	starts = palloc(sizeof(int) * capacity);
	lengths = palloc(sizeof(int) * capacity);
	yyscanner = scanner_init(text, &yyextra, &ScanKeywords, ScanKeywordTokens);
	yyextra.standard_conforming_strings = standard_conforming_strings;
	yyextra.backslash_quote = backslash_quote;
	for (;;)
	{
		const char *tok;

		if (core_yylex(&yylval, &yylloc, yyscanner) == 0)
			break;
		/* The scanner puts a NUL after the current token in its copy of the text. */
		tok = yyextra.scanbuf + yylloc;
		highest_param = Max(highest_param, rvd_token_param(tok));
		if (!rvd_token_is_constant(tok))
			continue;
		if (n == capacity)
		{
			capacity *= 2;
			starts = repalloc(starts, sizeof(int) * capacity);
			lengths = repalloc(lengths, sizeof(int) * capacity);
		}
		starts[n] = yylloc;
		lengths[n] = (int) strlen(tok);
		n++;
	}
	scanner_finish(yyscanner);

	initStringInfo(&buf);
	for (i = 0; i < n; i++)
	{
		appendBinaryStringInfo(&buf, text + last, starts[i] - last);
		appendStringInfo(&buf, "$%d", highest_param + i + 1);
		last = starts[i] + lengths[i];
	}
	appendStringInfoString(&buf, text + last);
	pfree(starts);
	pfree(lengths);
	return buf.data;
}
