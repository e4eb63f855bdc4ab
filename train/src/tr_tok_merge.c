/* tr_tok_merge.c - BPE merges over a word's symbols: the adjacent pair of lowest rank first,
 * the leftmost among equals, until no pair has a merge. Short words by rescanning; long ones
 * (a SentencePiece section, a run of thousands of letters) with a heap of candidate pairs, so
 * a word of n symbols costs O(n log n) instead of O(n^2). Both give the same symbols. */
#include <stdlib.h>
#include <string.h>

#include "tr_tok_internal.h"

#define TR_MERGE_SCAN_MAX 64

/* Rank and merged id of each adjacent pair, kept up to date: a merge looks up only the two
 * pairs it changes, and each step scans the ranks (n <= TR_MERGE_SCAN_MAX). */
static void pair_at(const tr_tok *tok, const uint32_t *syms, size_t i, uint32_t *rank, uint32_t *id)
{
    if (!tr_tok_merge_find(tok, syms[i], syms[i + 1], &rank[i], &id[i]))
        rank[i] = UINT32_MAX;
}

static size_t merge_scan(const tr_tok *tok, uint32_t *syms, size_t n)
{
    uint32_t rank[TR_MERGE_SCAN_MAX], id[TR_MERGE_SCAN_MAX];
    for (size_t i = 0; i + 1 < n; i++)
        pair_at(tok, syms, i, rank, id);
    while (n > 1) {
        size_t at = 0;
        for (size_t i = 1; i + 1 < n; i++)
            if (rank[i] < rank[at])
                at = i;
        if (rank[at] == UINT32_MAX)
            break;
        size_t tail = n - at - 2; /* symbols after the pair; pairs after it: tail - 1 */
        syms[at] = id[at];
        memmove(syms + at + 1, syms + at + 2, tail * sizeof *syms);
        if (tail > 1) {
            memmove(rank + at + 1, rank + at + 2, (tail - 1) * sizeof *rank);
            memmove(id + at + 1, id + at + 2, (tail - 1) * sizeof *id);
        }
        n--;
        if (at > 0)
            pair_at(tok, syms, at - 1, rank, id);
        if (at + 1 < n)
            pair_at(tok, syms, at, rank, id);
    }
    return n;
}

/* A candidate merge of the pair (left, right) whose left symbol sits at pos. It is stale once
 * either symbol changed; symbols only grow, so equal ids mean the pair is still there. */
typedef struct {
    uint32_t rank, pos, left, right;
} tr_cand;

static int cand_less(const tr_cand *a, const tr_cand *b)
{
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void heap_push(tr_cand *h, size_t *n, tr_cand c)
{
    size_t i = (*n)++;
    while (i > 0 && cand_less(&c, &h[(i - 1) / 2])) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = c;
}

static tr_cand heap_pop(tr_cand *h, size_t *n)
{
    tr_cand top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && cand_less(&h[c + 1], &h[c]))
            c++;
        if (!cand_less(&h[c], &last))
            break;
        h[i] = h[c];
        i = c;
    }
    if (*n)
        h[i] = last;
    return top;
}

/* Pushes the pair starting at pos (its right neighbour nx) when it has a merge. */
static void consider(const tr_tok *tok, const uint32_t *syms, const uint32_t *nx, size_t n,
                     tr_cand *h, size_t *nh, uint32_t pos)
{
    uint32_t rank, id;
    if (nx[pos] < n && tr_tok_merge_find(tok, syms[pos], syms[nx[pos]], &rank, &id))
        heap_push(h, nh, (tr_cand){rank, pos, syms[pos], syms[nx[pos]]});
}

static long merge_heap(const tr_tok *tok, uint32_t *syms, size_t n)
{
    /* Each merge adds at most two candidates: n - 1 at the start, 2 (n - 1) later. */
    uint32_t *nx = malloc(n * sizeof *nx), *pv = malloc(n * sizeof *pv);
    tr_cand *h = malloc(3 * n * sizeof *h);
    if (!nx || !pv || !h) {
        free(nx);
        free(pv);
        free(h);
        return -1;
    }
    size_t nh = 0;
    for (size_t i = 0; i < n; i++) {
        nx[i] = (uint32_t)(i + 1);
        pv[i] = i ? (uint32_t)(i - 1) : UINT32_MAX;
    }
    for (size_t i = 0; i + 1 < n; i++)
        consider(tok, syms, nx, n, h, &nh, (uint32_t)i);
    while (nh) {
        tr_cand c = heap_pop(h, &nh);
        uint32_t q = nx[c.pos], rank, id;
        if (syms[c.pos] != c.left || q >= n || syms[q] != c.right)
            continue;
        tr_tok_merge_find(tok, c.left, c.right, &rank, &id);
        syms[c.pos] = id;
        syms[q] = TR_NO_ID;
        nx[c.pos] = nx[q];
        if (nx[q] < n)
            pv[nx[q]] = c.pos;
        if (pv[c.pos] != UINT32_MAX)
            consider(tok, syms, nx, n, h, &nh, pv[c.pos]);
        consider(tok, syms, nx, n, h, &nh, c.pos);
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i = nx[i])
        syms[m++] = syms[i];
    free(nx);
    free(pv);
    free(h);
    return (long)m;
}

long tr_tok_merge_syms(const tr_tok *tok, uint32_t *syms, size_t n)
{
    if (n <= TR_MERGE_SCAN_MAX)
        return (long)merge_scan(tok, syms, n);
    return merge_heap(tok, syms, n);
}
