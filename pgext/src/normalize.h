/*-------------------------------------------------------------------------
 *
 * normalize.h
 *		A statement's text with its constants replaced by $n.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RVD_NORMALIZE_H
#define RVD_NORMALIZE_H

extern char *rvd_normalize_query(const char *text, bool standard_conforming_strings, int backslash_quote);

#endif							/* RVD_NORMALIZE_H */
