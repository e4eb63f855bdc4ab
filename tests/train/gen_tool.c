/* gen_tool: the C half of generate.sh, references computed without tr_generate.
 *   gen_tool greedy DIR ADAPTER_DIR|- N ID...
 *       the greedy continuation of the prompt ID... by the full forward: N times, the whole
 *       sequence through tr_model_eval and the argmax of the last position's logits
 *       appended (lowest id among ties). Prints "ids A B ..." and "gap G", the smallest
 *       difference between the largest and the second largest logit over the N steps: how
 *       far each step was from a tie. */
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tr_hf.h"

static int greedy(const char *dir, const char *adapter, int N, int T0, char **ids)
{
    mu_diag d = {{0}};
    int rc;
    tr_model *m = tr_hf_model_load(dir, &rc, &d);
    int32_t *seq = calloc((size_t)(T0 + N), sizeof *seq);
    if (!m || !seq)
        goto fail;
    if (strcmp(adapter, "-") && tr_peft_attach(m, adapter, 0, 0, NULL, &d))
        goto fail;
    for (int i = 0; i < T0; i++)
        seq[i] = (int32_t)strtol(ids[i], NULL, 10);
    int V = tr_model_config(m)->vocab_size;
    double gap = DBL_MAX;
    for (int t = T0; t < T0 + N; t++) {
        if (tr_model_eval(m, seq, NULL, 1, t, NULL, &d))
            goto fail;
        const float *l = tr_model_logits(m) + (size_t)(t - 1) * (size_t)V;
        int best = 0;
        for (int v = 1; v < V; v++)
            best = l[v] > l[best] ? v : best;
        float second = -FLT_MAX;
        for (int v = 0; v < V; v++)
            if (v != best && l[v] > second)
                second = l[v];
        gap = (double)(l[best] - second) < gap ? (double)(l[best] - second) : gap;
        seq[t] = best;
    }
    printf("ids");
    for (int t = T0; t < T0 + N; t++)
        printf(" %d", seq[t]);
    printf("\ngap %.9g\n", gap);
    free(seq);
    tr_model_free(m);
    return 0;
fail:
    fprintf(stderr, "gen_tool greedy: %s\n", d.msg);
    free(seq);
    tr_model_free(m);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc >= 6 && !strcmp(argv[1], "greedy"))
        return greedy(argv[2], argv[3], atoi(argv[4]), argc - 5, argv + 5);
    fprintf(stderr, "usage: gen_tool greedy DIR ADAPTER_DIR|- N ID...\n");
    return 2;
}
